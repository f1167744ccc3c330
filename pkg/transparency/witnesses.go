package transparency

import (
	"fmt"
	"net/url"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// DefaultWitnessTimeout is how long a checkpoint waits for the witnesses'
// cosignatures by default.
const DefaultWitnessTimeout = 5 * time.Second

// Witnessing is the service's witness policy (serve's configuration
// `witnessing:`): every new checkpoint is sent to the witnesses (C2SP
// tlog-witness add-checkpoint, with a consistency proof from the last size
// each one cosigned) and published with their cosignatures.
//
//	witnessing:
//	  witnesses:
//	    - url: http://127.0.0.1:7380
//	      key: witness.example+1234abcd+AQ...   # cosignature/v1 (or Ed25519) vkey
//	  threshold: 2       # cosignatures needed; default: every witness
//	  fail_open: false   # false: hold publication until the threshold is met
//	  timeout: 5s
//
// Fail closed (the default): a checkpoint is published only with at least
// Threshold cosignatures; meanwhile no new receipts are issued (POST
// /entries answers 303 and the receipt comes once the witnesses answer).
// Fail open: the checkpoint is published without them, the service logs a
// warning and counts it ([Service.UnwitnessedCheckpoints]).
type Witnessing struct {
	Witnesses []WitnessEndpoint `yaml:"witnesses"`
	Threshold int               `yaml:"threshold"`
	FailOpen  bool              `yaml:"fail_open"`
	Timeout   string            `yaml:"timeout"`
}

// WitnessEndpoint is one witness: its root URL and verifier key.
type WitnessEndpoint struct {
	URL string `yaml:"url"`
	Key string `yaml:"key"`
}

// witnessing is a checked Witnessing.
type witnessing struct {
	group   tessera.WitnessGroup
	opts    tessera.WitnessOptions
	trusted scitt.Witnesses
}

func (w *Witnessing) compile() (*witnessing, error) {
	if w == nil || len(w.Witnesses) == 0 {
		if w != nil && w.Threshold > 0 {
			return nil, fmt.Errorf("%w: witnessing: threshold %d with no witnesses", ErrConfig, w.Threshold)
		}
		return nil, nil
	}
	out := &witnessing{opts: tessera.WitnessOptions{Timeout: DefaultWitnessTimeout, FailOpen: w.FailOpen}}
	if w.Timeout != "" {
		d, err := time.ParseDuration(w.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: witnessing: timeout %q", ErrConfig, w.Timeout)
		}
		out.opts.Timeout = d
	}
	th := w.Threshold
	if th == 0 {
		th = len(w.Witnesses)
	}
	if th < 0 || th > len(w.Witnesses) {
		return nil, fmt.Errorf("%w: witnessing: threshold %d for %d witnesses", ErrConfig, w.Threshold, len(w.Witnesses))
	}
	children := make([]tessera.Witness, 0, len(w.Witnesses))
	for i, e := range w.Witnesses {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: witnessing: witnesses[%d]: url %q", ErrConfig, i, e.URL)
		}
		v, err := scitt.ParseWitnessKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: witnessing: witnesses[%d]: %w", ErrConfig, i, err)
		}
		tw, err := tessera.NewWitness(e.Key, u)
		if err != nil {
			return nil, fmt.Errorf("%w: witnessing: witnesses[%d]: %w", ErrConfig, i, err)
		}
		children = append(children, tw)
		out.trusted.Keys = append(out.trusted.Keys, v)
	}
	out.trusted.Threshold = th
	out.group = newGroup(th, children)
	return out, nil
}

// newGroup builds a threshold group of witnesses (Tessera's component
// interface is unexported, so the group is filled in place).
func newGroup(th int, ws []tessera.Witness) tessera.WitnessGroup {
	g := tessera.NewWitnessGroup(0, ws[0])
	g.Components = g.Components[:0]
	for _, w := range ws {
		g.Components = append(g.Components, w)
	}
	g.N = th
	return g
}
