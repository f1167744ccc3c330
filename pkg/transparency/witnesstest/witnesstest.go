// Package witnesstest is the project's own C2SP tlog-witness for tests: an
// in-process witness that verifies the log's signature and the consistency
// proof of each checkpoint it is sent (POST /add-checkpoint), remembers the
// latest checkpoint per origin, and cosigns with a cosignature/v1 key (C2SP
// tlog-cosignature). It has fault switches an independent witness does not:
// it can be stopped (503), or answer with a forged cosignature.
//
// It is a test fake, not a witness to deploy: its state is in memory.
package witnesstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	f_note "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Witness is a running test witness.
type Witness struct {
	// URL is the witness's root URL (add-checkpoint is under it).
	URL string
	// VKey is its cosignature/v1 verifier key.
	VKey string

	// Down makes it answer 503 to everything.
	Down atomic.Bool
	// Forge makes it answer with a cosignature that does not verify.
	Forge atomic.Bool

	signer *f_note.Signer
	srv    *httptest.Server

	mu     sync.Mutex
	logs   map[string]note.Verifier
	latest map[string]tree
}

type tree struct {
	size uint64
	root []byte
}

// New starts a witness named name that trusts the logs with the given
// signed-note verifier keys. Close stops it.
func New(name string, logVKeys ...string) (*Witness, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, err
	}
	cvkey, err := f_note.VKeyToCosignatureV1(vkey)
	if err != nil {
		return nil, err
	}
	s, err := f_note.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, err
	}
	w := &Witness{signer: s, logs: map[string]note.Verifier{}, latest: map[string]tree{}}
	w.VKey = cvkey
	for _, k := range logVKeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("log key %q: %w", k, err)
		}
		w.logs[v.Name()] = v
	}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	w.URL = w.srv.URL
	return w, nil
}

// AddLog makes the witness trust the log with this signed-note verifier
// key (a log whose key exists only once it started).
func (w *Witness) AddLog(vkey string) error {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return fmt.Errorf("log key %q: %w", vkey, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logs[v.Name()] = v
	return nil
}

// Close stops the witness.
func (w *Witness) Close() { w.srv.Close() }

// maxBody bounds an add-checkpoint request.
const maxBody = 64 << 10

func (w *Witness) serve(rw http.ResponseWriter, r *http.Request) {
	if w.Down.Load() {
		http.Error(rw, "witness stopped", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(rw, "body too large", http.StatusBadRequest)
		return
	}
	old, proofs, cp, err := parseRequest(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	origin, _, _ := strings.Cut(string(cp), "\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.logs[origin]
	if !ok {
		http.Error(rw, "unknown log", http.StatusNotFound)
		return
	}
	n, err := note.Open(cp, note.VerifierList(v))
	if err != nil {
		http.Error(rw, "log signature does not verify", http.StatusForbidden)
		return
	}
	size, root, err := parseBody(n.Text)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	prev := w.latest[origin]
	switch {
	case old > size:
		http.Error(rw, "old size larger than the checkpoint", http.StatusBadRequest)
		return
	case old != prev.size:
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", prev.size)
		return
	case old == size:
		if prev.root != nil && !bytes.Equal(prev.root, root) {
			http.Error(rw, "root differs at the same size", http.StatusConflict)
			return
		}
	case old > 0:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, proofs, prev.root, root); err != nil {
			http.Error(rw, "consistency proof does not verify", http.StatusUnprocessableEntity)
			return
		}
	}
	w.latest[origin] = tree{size: size, root: root}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	if w.Forge.Load() {
		sigs = forge(sigs)
	}
	rw.Write(sigs)
}

// forge flips a bit of the signature in a signature line.
func forge(line []byte) []byte {
	s := strings.TrimSuffix(string(line), "\n")
	i := strings.LastIndexByte(s, ' ')
	sig, err := base64.StdEncoding.DecodeString(s[i+1:])
	if err != nil || len(sig) == 0 {
		return line
	}
	sig[len(sig)-1] ^= 1
	return []byte(s[:i+1] + base64.StdEncoding.EncodeToString(sig) + "\n")
}

// parseRequest splits an add-checkpoint body: "old N", proof lines, an
// empty line, the checkpoint.
func parseRequest(b []byte) (uint64, [][]byte, []byte, error) {
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return 0, nil, nil, errors.New("no empty line")
	}
	sc := bufio.NewScanner(bytes.NewReader(head))
	if !sc.Scan() {
		return 0, nil, nil, errors.New("no old line")
	}
	n, ok := strings.CutPrefix(sc.Text(), "old ")
	if !ok {
		return 0, nil, nil, errors.New("no old line")
	}
	old, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("old size %q", n)
	}
	var proofs [][]byte
	for sc.Scan() {
		h, err := base64.StdEncoding.DecodeString(sc.Text())
		if err != nil || len(h) != 32 || len(proofs) == 63 {
			return 0, nil, nil, errors.New("bad proof line")
		}
		proofs = append(proofs, h)
	}
	return old, proofs, cp, nil
}

func parseBody(text string) (uint64, []byte, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return 0, nil, errors.New("malformed checkpoint")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, nil, errors.New("malformed checkpoint size")
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return 0, nil, errors.New("malformed checkpoint root")
	}
	return size, root, nil
}
