// Package monitor follows a Trustfabric Transparency Service's log from its
// tiles (C2SP tlog-tiles) and reports the entries of watched identities.
//
// # What it checks
//
// Every step reads the signed checkpoint (C2SP tlog-checkpoint), verifies it
// with the log's verifier key (pinned in the state file on first use, or
// given), and proves it consistent (RFC 9162 §2.1.4, computed from the tiles)
// with the last checkpoint the monitor saw. A log that shrank, or shows a
// different root at a size it already showed, or whose new tree does not
// contain the old one, is a split view or rewritten history: [ErrInconsistent].
// The monitor then reads the new entries from the entry bundles, checks each
// against the tree's leaf hashes, fetches its statement
// (GET /entries/{id}/statement), checks that SHA-256 of the statement is the
// entry, and parses it. Statements whose issuer (the workload identity of a
// statement signed under a WIT, or the issuer of a trust-registry statement)
// starts with a watched prefix are reported.
//
// # State
//
// The state file holds the verifier key, the last verified checkpoint and
// the number of entries processed. It is replaced atomically after the
// checkpoint is verified and after every entry bundle, so a restarted
// monitor resumes without reporting an entry twice (after a crash, at most
// the entries of one bundle are reported again).
package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// Errors a step returns (wrapped); callers branch with errors.Is.
var (
	// ErrInconsistent: the log shown now is not an extension of the log the
	// monitor saw before (split view or rewritten history).
	ErrInconsistent = errors.New("log inconsistent with the checkpoint seen before")
	// ErrBadCheckpoint: the checkpoint is malformed, not signed by the
	// log's key, or names another origin.
	ErrBadCheckpoint = errors.New("bad checkpoint")
	// ErrBadLog: tiles, entries or statements do not match the signed
	// checkpoint.
	ErrBadLog = errors.New("log contents do not match the checkpoint")
	// ErrUnreachable: the service could not be read.
	ErrUnreachable = errors.New("transparency service unreachable")
	// ErrState: the state file is unreadable or belongs to another log.
	ErrState = errors.New("bad monitor state")
)

// Report is one entry of a watched identity.
type Report struct {
	// Log is the log's origin.
	Log string `json:"log"`
	// Index is the entry's index in the log; Entry its id (hex SHA-256 of
	// the registered statement).
	Index int64  `json:"index"`
	Entry string `json:"entry"`
	// Issuer and Subject are the statement's CWT iss and sub.
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// IssuedAt is the statement's iat, when present.
	IssuedAt    *time.Time `json:"iat,omitempty"`
	ContentType string     `json:"content_type,omitempty"`
	// Watch is the watched prefix that matched.
	Watch string `json:"watch"`
}

// Result sums up one step.
type Result struct {
	// Origin is the log's origin; Size and Root its verified checkpoint.
	Origin string
	Size   int64
	Root   tlog.Hash
	// From is the first entry processed by this step; Entries how many were
	// processed; Reported how many were reported.
	From, Entries int64
	Reported      int
	// Missing counts entries whose statement the service no longer serves
	// (lost in a storage repair); they cannot be attributed.
	Missing int
}

// Monitor follows one log.
type Monitor struct {
	f           *fetcher
	statePath   string
	watch       []string
	vkey        string
	concurrency int
	witnesses   *scitt.Witnesses
}

// Option configures [New].
type Option func(*Monitor) error

// WithWatch adds watched issuer prefixes (a workload identifier such as
// "spiffe://example.org/ci/" or an issuer URL). Default: none, so the
// monitor only checks the log.
func WithWatch(prefixes ...string) Option {
	return func(m *Monitor) error {
		for _, p := range prefixes {
			if p == "" {
				return errors.New("watch: empty prefix")
			}
		}
		m.watch = append(m.watch, prefixes...)
		return nil
	}
}

// WithVerifierKey pins the log's checkpoint verifier key (signed-note vkey).
// Default: the key in the state file, else the one served at GET /log/vkey
// on first use (trust on first use), which is then kept in the state file.
func WithVerifierKey(vkey string) Option {
	return func(m *Monitor) error {
		if _, err := note.NewVerifier(vkey); err != nil {
			return fmt.Errorf("verifier key: %w", err)
		}
		m.vkey = vkey
		return nil
	}
}

// WithWitnesses requires every checkpoint the monitor follows to be
// cosigned by at least w.Threshold of w.Keys (C2SP tlog-cosignature); a
// checkpoint that is not is an [ErrBadCheckpoint]. Default: cosignatures are
// not checked.
func WithWitnesses(w scitt.Witnesses) Option {
	return func(m *Monitor) error {
		if w.Threshold < 1 || w.Threshold > len(w.Keys) {
			return fmt.Errorf("witnesses: threshold %d for %d keys", w.Threshold, len(w.Keys))
		}
		m.witnesses = &w
		return nil
	}
}

// WithHTTPClient sets the HTTP client. Default: a client with a 30 s timeout
// keeping one idle connection per concurrent fetch.
func WithHTTPClient(c *http.Client) Option {
	return func(m *Monitor) error { m.f.client = c; return nil }
}

// WithConcurrency sets how many statements are fetched at once. Default 64.
func WithConcurrency(n int) Option {
	return func(m *Monitor) error {
		if n < 1 {
			return fmt.Errorf("concurrency %d: must be at least 1", n)
		}
		m.concurrency = n
		return nil
	}
}

// New returns a monitor of the service at tsURL keeping its state in
// statePath.
func New(tsURL, statePath string, opts ...Option) (*Monitor, error) {
	if !strings.HasPrefix(tsURL, "http://") && !strings.HasPrefix(tsURL, "https://") {
		return nil, fmt.Errorf("transparency service URL %q: want http(s)://", tsURL)
	}
	if statePath == "" {
		return nil, errors.New("a state file is required")
	}
	m := &Monitor{f: &fetcher{base: strings.TrimRight(tsURL, "/")}, statePath: statePath, concurrency: 64}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.f.client == nil {
		// Keep a connection per concurrent fetch (the default transport
		// keeps 2 per host and would reconnect for every statement).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = m.concurrency
		m.f.client = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	return m, nil
}

// Step verifies the newest checkpoint against the state, processes the new
// entries and calls report (in log order) for each one of a watched
// identity. An error from report stops the step; the entries of the bundle
// being processed will be processed again by the next step.
func (m *Monitor) Step(ctx context.Context, report func(Report) error) (*Result, error) {
	st, err := loadState(m.statePath)
	if err != nil {
		return nil, err
	}
	vkey := st.VKey
	switch {
	case m.vkey != "" && vkey != "" && m.vkey != vkey:
		return nil, fmt.Errorf("%w: the state file follows the log with key %q, not %q", ErrState, vkey, m.vkey)
	case m.vkey != "":
		vkey = m.vkey
	case vkey == "":
		b, err := m.f.get(ctx, "log/vkey", maxVKeySize)
		if err != nil {
			return nil, fmt.Errorf("fetch the log's verifier key: %w", err)
		}
		vkey = strings.TrimSpace(string(b))
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key %q: %w", ErrBadCheckpoint, vkey, err)
	}
	raw, err := m.f.get(ctx, "checkpoint", maxCheckpointSize)
	if err != nil {
		return nil, fmt.Errorf("fetch checkpoint: %w", err)
	}
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%w: not signed by %s: %w", ErrBadCheckpoint, v.Name(), err)
	}
	cp, err := ParseCheckpointBody(n.Text)
	if err != nil {
		return nil, err
	}
	if cp.Origin != v.Name() {
		return nil, fmt.Errorf("%w: origin %q, the key is %q's", ErrBadCheckpoint, cp.Origin, v.Name())
	}
	if m.witnesses != nil {
		if _, err := scitt.VerifyCosigned(raw, uint64(cp.Size), cp.Root[:], *m.witnesses); err != nil {
			return nil, fmt.Errorf("%w: checkpoint of size %d: %w", ErrBadCheckpoint, cp.Size, err)
		}
	}
	tr := &tileReader{ctx: ctx, f: m.f, full: map[tlog.Tile][]byte{}}
	hr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Root}, tr)
	if st.VKey != "" {
		if err := checkConsistent(st, cp, hr); err != nil {
			return nil, err
		}
	}
	if st.VKey == "" || cp.Size > st.Size {
		st.VKey, st.Origin, st.Size, st.Root, st.Checkpoint = vkey, cp.Origin, cp.Size, cp.Root[:], string(raw)
		if err := st.save(m.statePath); err != nil {
			return nil, err
		}
	}
	res := &Result{Origin: cp.Origin, Size: st.Size, Root: cp.Root, From: st.Next}
	for st.Next < st.Size {
		if err := m.bundle(ctx, st, hr, res, report); err != nil {
			return res, err
		}
		if err := st.save(m.statePath); err != nil {
			return res, err
		}
	}
	return res, nil
}

// checkConsistent proves the checkpoint cp consistent with the one in st.
func checkConsistent(st *state, cp Checkpoint, hr tlog.HashReader) error {
	var old tlog.Hash
	copy(old[:], st.Root)
	switch {
	case cp.Size < st.Size:
		return fmt.Errorf("%w: the log shrank from size %d (root %s) to %d (root %s): history was rewritten",
			ErrInconsistent, st.Size, old, cp.Size, cp.Root)
	case cp.Size == st.Size && cp.Root != old:
		return fmt.Errorf("%w: two roots for size %d: %s seen before, %s now (split view)", ErrInconsistent, cp.Size, old, cp.Root)
	case cp.Size == st.Size:
		return nil
	}
	if st.Size == 0 {
		return nil
	}
	p, err := tlog.ProveTree(cp.Size, st.Size, hr)
	if err != nil {
		return fmt.Errorf("%w: consistency proof %d -> %d from the tiles: %w", ErrBadLog, st.Size, cp.Size, err)
	}
	if err := tlog.CheckTree(p, cp.Size, cp.Root, st.Size, old); err != nil {
		return fmt.Errorf("%w: the tree of size %d (root %s) does not contain the tree of size %d (root %s) seen before (split view or rewritten history): %w",
			ErrInconsistent, cp.Size, cp.Root, st.Size, old, err)
	}
	return nil
}

// bundle processes the entries of the bundle holding st.Next.
func (m *Monitor) bundle(ctx context.Context, st *state, hr tlog.HashReader, res *Result, report func(Report) error) error {
	n := st.Next / bundleWidth
	first, end := n*bundleWidth, min((n+1)*bundleWidth, st.Size)
	idx := make([]int64, 0, end-first)
	for i := first; i < end; i++ {
		idx = append(idx, tlog.StoredHashIndex(0, i))
	}
	leaves, err := hr.ReadHashes(idx)
	if err != nil {
		return fmt.Errorf("%w: leaf hashes %d-%d: %w", ErrBadLog, first, end-1, err)
	}
	b, err := m.f.get(ctx, bundlePath(n, st.Size), maxBundleSize)
	if err != nil {
		return fmt.Errorf("fetch entry bundle %d: %w", n, err)
	}
	entries, err := ParseEntryBundle(b, int(end-first))
	if err != nil {
		return fmt.Errorf("entry bundle %d: %w", n, err)
	}
	for i, e := range entries {
		if tlog.RecordHash(e) != leaves[i] {
			return fmt.Errorf("%w: entry %d does not hash to its leaf", ErrBadLog, first+int64(i))
		}
		if len(e) != sha256.Size {
			return fmt.Errorf("%w: entry %d is %d bytes, not a SHA-256 entry", ErrBadLog, first+int64(i), len(e))
		}
	}
	from := st.Next - first
	reports := make([]*Report, len(entries))
	errs := make([]error, len(entries))
	missing := make([]bool, len(entries))
	sem := make(chan struct{}, m.concurrency)
	var wg sync.WaitGroup
	for i := from; i < int64(len(entries)); i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reports[i], missing[i], errs[i] = m.statement(ctx, first+i, entries[i])
		})
	}
	wg.Wait()
	for i := from; i < int64(len(entries)); i++ {
		if errs[i] != nil {
			return errs[i]
		}
		if missing[i] {
			res.Missing++
		}
		if r := reports[i]; r != nil {
			r.Log = st.Origin
			if err := report(*r); err != nil {
				return err
			}
			res.Reported++
		}
		res.Entries++
	}
	st.Next = end
	return nil
}

// statement fetches and checks the statement of entry e at index i and
// returns its report when it matches a watched prefix.
func (m *Monitor) statement(ctx context.Context, i int64, e []byte) (*Report, bool, error) {
	id := hex.EncodeToString(e)
	b, err := m.f.get(ctx, "entries/"+id+"/statement", maxStatementSize)
	if errors.Is(err, errNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("fetch statement of entry %d: %w", i, err)
	}
	if sum := sha256.Sum256(b); string(sum[:]) != string(e) {
		return nil, false, fmt.Errorf("%w: the statement served for entry %d (%s) does not hash to it", ErrBadLog, i, id)
	}
	if len(m.watch) == 0 {
		return nil, false, nil
	}
	s, err := scitt.ParseStatement(b)
	if err != nil {
		return nil, false, fmt.Errorf("%w: entry %d (%s): %w", ErrBadLog, i, id, err)
	}
	for _, w := range m.watch {
		if strings.HasPrefix(s.Issuer, w) {
			r := &Report{Index: i, Entry: id, Issuer: s.Issuer, Subject: s.Subject, ContentType: s.ContentType, Watch: w}
			if !s.IssuedAt.IsZero() {
				t := s.IssuedAt.UTC()
				r.IssuedAt = &t
			}
			return r, false, nil
		}
	}
	return nil, false, nil
}
