// Command rekorload is the closed-loop load generator for Sigstore's Rekor v2
// (rekor-tiles) used by bench/peers/rekor/run.sh to compare it with
// `trustfabric bench register --sync --window 1`: the same method (C clients,
// exactly one request in flight each, for a fixed time, with a pool of
// requests signed before the clock starts) and the same report lines.
//
//	rekorload keygen FILE
//	rekorload freeport [N]
//	rekorload run --url URL --origin NAME --signer FILE --clients C --duration D --warmup W --count POOL
//
// keygen writes an Ed25519 private key (PKCS #8 PEM), the form Rekor's
// --signer-filepath reads, for the log's checkpoint signatures.
//
// freeport prints N (default 1) loopback TCP ports free at the time (Rekor
// listens on fixed ports: HTTP, gRPC and metrics).
//
// run registers hashedrekord v0.0.2 entries through Rekor v2's HTTP API
// (POST /api/v2/log/entries with a CreateEntryRequest in protojson): each
// request carries the SHA-256 digest of a distinct random 1 KiB artifact,
// signed with ECDSA P-256 (PKIX_ECDSA_P256_SHA_256, the counterpart of the
// ES256 statements Trustfabric's load generator registers) by a key created
// for the run. Rekor answers 201 with a TransparencyLogEntry once a published
// checkpoint covers the entry. Rate and latency are those of the answers that
// arrive between W and D (or the moment the pool ran out). After the clock stops every answer is verified
// (as `bench register` verifies every receipt): the canonicalized body names
// the digest sent, the inclusion proof leads from its leaf hash to the root,
// and the checkpoint carries that root and size and verifies under the log's
// key (derived from --signer) and origin.
//
// It speaks plain JSON so that the main module needs none of Rekor's
// dependencies.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rekorload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: rekorload keygen FILE | rekorload run --url URL --origin NAME --signer FILE --clients C --duration D --warmup W --count POOL")
	}
	switch args[0] {
	case "keygen":
		if len(args) != 2 {
			return errors.New("usage: rekorload keygen FILE")
		}
		return keygen(args[1])
	case "freeport":
		// Ports for Rekor's HTTP, gRPC and metrics listeners (it takes no :0).
		n := 1
		if len(args) == 2 {
			var err error
			if n, err = strconv.Atoi(args[1]); err != nil || n < 1 || n > 16 {
				return errors.New("usage: rekorload freeport [N ≤ 16]")
			}
		}
		return freeports(out, n)
	case "run":
		var cfg config
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.StringVar(&cfg.url, "url", "", "Rekor v2 base URL (http://host:port)")
		fs.StringVar(&cfg.origin, "origin", "", "the log's checkpoint origin (Rekor's --hostname)")
		fs.StringVar(&cfg.signer, "signer", "", "the log's Ed25519 private key file (Rekor's --signer-filepath), for its public key")
		fs.IntVar(&cfg.clients, "clients", 64, "clients, each with one request in flight")
		fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "start requests for this long, then let those in flight finish (verified, not measured)")
		fs.DurationVar(&cfg.warmup, "warmup", 0, "answers that arrive before this are not measured")
		fs.IntVar(&cfg.count, "count", 10000, "requests signed before the clock (the run ends early when they run out)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if cfg.url == "" || cfg.origin == "" || cfg.signer == "" || cfg.clients <= 0 || cfg.count <= 0 || cfg.duration <= 0 ||
			cfg.warmup < 0 || cfg.warmup >= cfg.duration {
			return errors.New("run: --url, --origin, --signer and positive --clients, --count, --duration are required, and --warmup must be shorter than --duration")
		}
		rep, err := load(ctx, cfg)
		if rep != nil {
			fmt.Fprint(out, rep)
		}
		return err
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func keygen(file string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func freeports(out io.Writer, n int) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Fprintln(out, l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

type config struct {
	url, origin, signer string
	clients, count      int
	duration, warmup    time.Duration
}

// request is one presigned CreateEntryRequest and the digest it carries.
type request struct {
	digest []byte
	body   []byte
}

type result struct {
	answer  []byte
	latency time.Duration
	end     time.Duration // since the start of the run
	err     error
}

type report struct {
	clients, count, verified, measured int
	duration, elapsed                  time.Duration
	windowStart, windowEnd             time.Duration
	p50, p90, p99, max                 time.Duration
	verifyElapsed                      time.Duration
}

func (r *report) String() string {
	return fmt.Sprintf(`mode:           closed loop (one POST /api/v2/log/entries per entry, answered 201 with inclusion proof and checkpoint; one request in flight per client); clients start requests for %s
registrations:  %d with %d concurrent clients (window 1), hashedrekord v0.0.2, ECDSA P-256 over the SHA-256 of a 1024-byte artifact
elapsed:        %s
throughput:     %.0f registrations/s (receipt in hand) in the window %s-%s (%d receipts; warm-up and drain not measured)
receipt latency p50 %s  p90 %s  p99 %s  max %s
verified:       %d/%d receipts (%s)
`, r.duration, r.count, r.clients, r.elapsed.Round(time.Millisecond), float64(r.measured)/(r.windowEnd-r.windowStart).Seconds(),
		r.windowStart, r.windowEnd.Round(time.Millisecond), r.measured, ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max), r.verified, r.count, r.verifyElapsed.Round(time.Millisecond))
}

func ms(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

func load(ctx context.Context, cfg config) (*report, error) {
	verifier, err := logVerifier(cfg.signer, cfg.origin)
	if err != nil {
		return nil, err
	}
	reqs, err := presign(cfg.count)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 4096
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	endpoint := strings.TrimSuffix(cfg.url, "/") + "/api/v2/log/entries"

	results := make([]result, len(reqs))
	var next, exhausted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.clients {
		wg.Go(func() {
			for time.Since(start) < cfg.duration && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					exhausted.CompareAndSwap(0, int64(time.Since(start)))
					return
				}
				t0 := time.Now()
				results[i].answer, results[i].err = post(ctx, hc, endpoint, reqs[i].body)
				results[i].latency, results[i].end = time.Since(t0), time.Since(start)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	done := min(int(next.Load()), len(reqs))
	if done == 0 {
		return nil, errors.New("no request started")
	}
	results, reqs = results[:done], reqs[:done]
	// The measured window, as in `bench register --duration --warmup`.
	wstart, wend := cfg.warmup, cfg.duration
	if ex := time.Duration(exhausted.Load()); ex > 0 && ex < wend {
		wend = ex // the pool ran out: what follows is drain
	}
	lat := make([]time.Duration, 0, done)
	for i := range results {
		if results[i].err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, results[i].err)
		}
		if results[i].end >= wstart && results[i].end <= wend {
			lat = append(lat, results[i].latency)
		}
	}
	if len(lat) == 0 {
		return nil, errors.New("no answer arrived in the measured window (warm-up too long, or the pool too small)")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	rep := &report{clients: cfg.clients, count: done, measured: len(lat), duration: cfg.duration, elapsed: elapsed,
		windowStart: wstart, windowEnd: wend, p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), max: lat[len(lat)-1]}
	vstart := time.Now()
	rep.verified, err = verifyAll(reqs, results, verifier)
	rep.verifyElapsed = time.Since(vstart)
	return rep, err
}

// presign makes n CreateEntryRequests on every CPU: hashedrekord v0.0.2, each
// for the SHA-256 of its own random 1 KiB artifact, signed by a fresh P-256 key.
func presign(n int) ([]request, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	reqs := make([]request, n)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			artifact := make([]byte, 1024)
			for i := w; i < n; i += len(errs) {
				rand.Read(artifact)
				digest := sha256.Sum256(artifact)
				sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
				if err != nil {
					errs[w] = err
					return
				}
				reqs[i] = request{digest: digest[:], body: createEntryRequest(digest[:], sig, spki)}
			}
		})
	}
	wg.Wait()
	return reqs, errors.Join(errs...)
}

// createEntryRequest is rekor-tiles' CreateEntryRequest in protojson
// (bytes as standard base64).
func createEntryRequest(digest, sig, spki []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `{"hashedRekordRequestV002":{"digest":%q,"signature":{"content":%q,"verifier":{"publicKey":{"rawBytes":%q},"keyDetails":"PKIX_ECDSA_P256_SHA_256"}}}}`,
		b64(digest), b64(sig), b64(spki))
}

// post sends one request, retrying (with backoff, 20 ms doubling to 1 s, at
// most 20 times) when Rekor pushes back (503/429) or the connection fails, as
// the SCRAPI client of `bench register` does.
func post(ctx context.Context, hc *http.Client, url string, body []byte) ([]byte, error) {
	backoff := 20 * time.Millisecond
	var last error
	for range 21 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				err = rerr
			case resp.StatusCode == http.StatusCreated:
				return b, nil
			case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
				err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
			case resp.StatusCode == http.StatusConflict && last != nil:
				// Rekor v2 answers a duplicate with 409 and no proof.
				return nil, fmt.Errorf("%s after a failed attempt (%w): the entry was logged but its answer was lost (did the request outlive --server-timeout?): %s",
					resp.Status, last, bytes.TrimSpace(b))
			default:
				return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	return nil, fmt.Errorf("gave up after 21 attempts: %w", last)
}

// logVerifier returns the note verifier of the log's checkpoints: Ed25519
// signed notes (C2SP signed-note) named by the origin.
func logVerifier(signerFile, origin string) (note.Verifier, error) {
	priv, err := loadEd25519(signerFile)
	if err != nil {
		return nil, err
	}
	vkey, err := note.NewEd25519VerifierKey(origin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vkey)
}

// loadEd25519 reads the PKCS #8 PEM Ed25519 key keygen writes.
func loadEd25519(file string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", file)
	}
	return priv, nil
}

// ErrUnverified is returned when an answer does not verify.
var ErrUnverified = errors.New("entry does not verify")

func verifyAll(reqs []request, results []result, v note.Verifier) (int, error) {
	var ok atomic.Int64
	var mu sync.Mutex
	var firstErr error
	checkpoints := map[string]error{} // verified checkpoint envelopes
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(results); i += workers {
				if err := verifyEntry(reqs[i].digest, results[i].answer, v, &mu, checkpoints); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("entry %d: %w: %w", i, ErrUnverified, err)
					}
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load()), firstErr
}

// transparencyLogEntry is the part of Rekor's TransparencyLogEntry (protojson:
// int64 as strings, bytes as base64) that is verified.
type transparencyLogEntry struct {
	LogIndex       string `json:"logIndex"`
	InclusionProof struct {
		LogIndex   string   `json:"logIndex"`
		RootHash   []byte   `json:"rootHash"`
		TreeSize   string   `json:"treeSize"`
		Hashes     [][]byte `json:"hashes"`
		Checkpoint struct {
			Envelope string `json:"envelope"`
		} `json:"checkpoint"`
	} `json:"inclusionProof"`
	CanonicalizedBody []byte `json:"canonicalizedBody"`
}

type hashedRekordBody struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Spec       struct {
		HashedRekordV002 struct {
			Data struct {
				Digest []byte `json:"digest"`
			} `json:"data"`
		} `json:"hashedRekordV002"`
	} `json:"spec"`
}

func verifyEntry(digest, answer []byte, v note.Verifier, mu *sync.Mutex, checkpoints map[string]error) error {
	var tle transparencyLogEntry
	if err := json.Unmarshal(answer, &tle); err != nil {
		return fmt.Errorf("parse answer: %w", err)
	}
	var body hashedRekordBody
	if err := json.Unmarshal(tle.CanonicalizedBody, &body); err != nil {
		return fmt.Errorf("parse canonicalized body: %w", err)
	}
	if body.Kind != "hashedrekord" || body.APIVersion != "0.0.2" || !bytes.Equal(body.Spec.HashedRekordV002.Data.Digest, digest) {
		return errors.New("the entry is not the hashedrekord v0.0.2 of the digest sent")
	}
	idx, err := strconv.ParseUint(tle.InclusionProof.LogIndex, 10, 64)
	if err != nil {
		return fmt.Errorf("log index: %w", err)
	}
	size, err := strconv.ParseUint(tle.InclusionProof.TreeSize, 10, 64)
	if err != nil {
		return fmt.Errorf("tree size: %w", err)
	}
	if tle.LogIndex != tle.InclusionProof.LogIndex {
		return errors.New("log index differs from the proof's")
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(tle.CanonicalizedBody)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, size, leaf, tle.InclusionProof.Hashes, tle.InclusionProof.RootHash); err != nil {
		return fmt.Errorf("inclusion proof: %w", err)
	}
	env := tle.InclusionProof.Checkpoint.Envelope
	mu.Lock()
	cerr, seen := checkpoints[env]
	mu.Unlock()
	if !seen {
		cerr = verifyCheckpoint(env, v)
		mu.Lock()
		checkpoints[env] = cerr
		mu.Unlock()
	}
	if cerr != nil {
		return cerr
	}
	// The checkpoint must commit to the proof's size and root.
	want := fmt.Sprintf("%s\n%d\n%s\n", v.Name(), size, base64.StdEncoding.EncodeToString(tle.InclusionProof.RootHash))
	if !strings.HasPrefix(env, want) {
		return errors.New("checkpoint does not match the proof's size and root")
	}
	return nil
}

func verifyCheckpoint(env string, v note.Verifier) error {
	if _, err := note.Open([]byte(env), note.VerifierList(v)); err != nil {
		return fmt.Errorf("checkpoint signature: %w", err)
	}
	return nil
}
