package monitor_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/veraison/go-cose"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/monitor"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
)

// ts is a running Transparency Service (real service, POSIX log) trusting
// one statement key for any issuer.
type ts struct {
	dir    string
	svc    *transparency.Service
	srv    *httptest.Server
	client *scrapi.Client
	key    *keys.PrivateKey
}

func newKey(t testing.TB) (*keys.PrivateKey, string) {
	t.Helper()
	k, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "issuer.jwk")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return k, p
}

// startTS opens a service on dir (new or existing) trusting keyFile.
func startTS(t testing.TB, dir string, key *keys.PrivateKey, keyFile string) *ts {
	t.Helper()
	return startTSWith(t, dir, key, keyFile, nil)
}

func startTSWith(t testing.TB, dir string, key *keys.PrivateKey, keyFile string, wit *transparency.Witnessing) *ts {
	t.Helper()
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := transparency.Open(context.Background(), transparency.Options{Dir: dir, Policy: pol, Issuer: "https://ts.test", Witnessing: wit})
	if err != nil {
		t.Fatal(err)
	}
	s := &ts{dir: dir, svc: svc, key: key}
	s.srv = httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
	s.client, err = scrapi.NewClient(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *ts) stop() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.srv = nil
	_ = s.svc.Close(context.Background())
}

// register registers one statement per issuer and returns their entry ids.
func (s *ts) register(t testing.TB, issuers ...string) []string {
	t.Helper()
	ids := make([]string, len(issuers))
	var wg sync.WaitGroup
	for i, iss := range issuers {
		wg.Go(func() {
			stmt, err := scitt.SignStatement(context.Background(), s.key, scitt.Claims{Issuer: iss, Subject: "pkg:oci/app"}, []byte(rand.Text()))
			if err != nil {
				t.Error(err)
				return
			}
			reg, err := s.client.Register(context.Background(), stmt)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = reg.EntryID
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

func step(t *testing.T, url, state string, opts ...monitor.Option) ([]monitor.Report, *monitor.Result, error) {
	t.Helper()
	m, err := monitor.New(url, state, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var got []monitor.Report
	res, err := m.Step(t.Context(), func(r monitor.Report) error {
		got = append(got, r)
		return nil
	})
	return got, res, err
}

func entries(rs []monitor.Report) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.Entry] = true
	}
	return m
}

const watched = "spiffe://example.org/ci/"

func TestMonitorReportsWatchedOnlyAndResumes(t *testing.T) {
	key, keyFile := newKey(t)
	s := startTS(t, t.TempDir(), key, keyFile)
	ids := s.register(t, watched+"build", "https://other.test", watched+"deploy", "spiffe://example.org/cix", "https://other.test")
	state := filepath.Join(t.TempDir(), "state.json")

	got, res, err := step(t, s.srv.URL, state, monitor.WithWatch(watched))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ids[0]: true, ids[2]: true}
	if len(got) != 2 || !entries(got)[ids[0]] || !entries(got)[ids[2]] {
		t.Fatalf("reported %+v, want exactly entries %v", got, want)
	}
	for _, r := range got {
		if !strings.HasPrefix(r.Issuer, watched) || r.Watch != watched || r.Log != "ts.test" || r.Subject != "pkg:oci/app" {
			t.Errorf("report %+v", r)
		}
	}
	// The policy statement plus five: every entry processed.
	if res.Entries != 6 || res.Size != 6 || res.From != 0 || res.Reported != 2 {
		t.Fatalf("result %+v", res)
	}

	// A restarted monitor (a new Monitor on the same state file) reports
	// only what was added since.
	got, res, err = step(t, s.srv.URL, state, monitor.WithWatch(watched))
	if err != nil || len(got) != 0 || res.Entries != 0 {
		t.Fatalf("second step with nothing new: %+v %+v %v", got, res, err)
	}
	more := s.register(t, "https://other.test", watched+"release")
	got, res, err = step(t, s.srv.URL, state, monitor.WithWatch(watched))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Entry != more[1] || res.From != 6 || res.Entries != 2 {
		t.Fatalf("after restart: reported %+v (result %+v), want only %s", got, res, more[1])
	}
	if got[0].Index != 7 && got[0].Index != 6 {
		t.Fatalf("index %d", got[0].Index)
	}

	// A fresh state file over the whole log with two prefixes.
	got, _, err = step(t, s.srv.URL, filepath.Join(t.TempDir(), "s"), monitor.WithWatch(watched, "https://other.test"))
	if err != nil || len(got) != 6 {
		t.Fatalf("two prefixes: %d reports, %v", len(got), err)
	}
}

// TestMonitorDetectsSplitView builds a split view: the data directory of a
// service is copied, and the original and the copy (same checkpoint key,
// same origin) grow differently. A monitor that saw one of them refuses the
// other, naming the inconsistency.
func TestMonitorDetectsSplitView(t *testing.T) {
	key, keyFile := newKey(t)
	dirA := t.TempDir()
	a := startTS(t, dirA, key, keyFile)
	a.register(t, watched+"a", watched+"b")
	a.stop()
	dirB := filepath.Join(t.TempDir(), "b")
	dirOld := filepath.Join(t.TempDir(), "old")
	for _, d := range []string{dirB, dirOld} {
		if err := os.CopyFS(d, os.DirFS(dirA)); err != nil {
			t.Fatal(err)
		}
	}
	a = startTS(t, dirA, key, keyFile)
	b := startTS(t, dirB, key, keyFile)
	a.register(t, watched+"a1", watched+"a2")
	b.register(t, watched+"b1", watched+"b2")

	state := filepath.Join(t.TempDir(), "state.json")
	if _, _, err := step(t, a.srv.URL, state); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, other root.
	_, _, err = step(t, b.srv.URL, state, monitor.WithWatch(watched))
	if !errors.Is(err, monitor.ErrInconsistent) {
		t.Fatalf("fork of the same size: %v, want ErrInconsistent", err)
	}
	// A larger tree that does not contain the one seen.
	b.register(t, watched+"b3")
	_, _, err = step(t, b.srv.URL, state, monitor.WithWatch(watched))
	if !errors.Is(err, monitor.ErrInconsistent) {
		t.Fatalf("larger fork: %v, want ErrInconsistent", err)
	}
	// The failed steps left the state as it was.
	if now, _ := os.ReadFile(state); string(now) != string(saved) {
		t.Fatal("a failed step changed the state file")
	}
	// History rewritten: the log shown is smaller than the one seen.
	old := startTS(t, dirOld, key, keyFile)
	_, _, err = step(t, old.srv.URL, state)
	if !errors.Is(err, monitor.ErrInconsistent) {
		t.Fatalf("shrunk log: %v, want ErrInconsistent", err)
	}
	// The honest log still follows.
	a.register(t, "x")
	if _, res, err := step(t, a.srv.URL, state); err != nil || res.Entries != 1 {
		t.Fatalf("honest log: %+v %v", res, err)
	}
}

// TestMonitorRefusesBadLogs: a statement that does not hash to its entry,
// and a checkpoint not signed by the pinned key.
func TestMonitorRefusesBadLogs(t *testing.T) {
	key, keyFile := newKey(t)
	s := startTS(t, t.TempDir(), key, keyFile)
	ids := s.register(t, watched+"a", watched+"b")
	other := s.register(t, "https://other.test")[0]
	h := s.svc.Handler(transparency.HandlerOptions{})
	swap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/entries/"+ids[1]+"/statement" {
			r.URL.Path = "/entries/" + other + "/statement"
		}
		h.ServeHTTP(w, r)
	}))
	defer swap.Close()
	_, _, err := step(t, swap.URL, filepath.Join(t.TempDir(), "s"), monitor.WithWatch(watched))
	if !errors.Is(err, monitor.ErrBadLog) {
		t.Fatalf("swapped statement: %v, want ErrBadLog", err)
	}

	_, vkey, err := note.GenerateKey(rand.Reader, "ts.test")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = step(t, s.srv.URL, filepath.Join(t.TempDir(), "s"), monitor.WithVerifierKey(vkey))
	if !errors.Is(err, monitor.ErrBadCheckpoint) {
		t.Fatalf("checkpoint under another key: %v, want ErrBadCheckpoint", err)
	}
	// A state file pinned to one key refuses another pinned key.
	state := filepath.Join(t.TempDir(), "s")
	if _, _, err := step(t, s.srv.URL, state); err != nil {
		t.Fatal(err)
	}
	if _, _, err := step(t, s.srv.URL, state, monitor.WithVerifierKey(vkey)); !errors.Is(err, monitor.ErrState) {
		t.Fatalf("state of another key: %v, want ErrState", err)
	}
	if err := os.WriteFile(state, []byte(`{"version":1,"vkey":"x","size":5,"next":9,"root":""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := step(t, s.srv.URL, state); !errors.Is(err, monitor.ErrState) {
		t.Fatalf("damaged state: %v, want ErrState", err)
	}
}

func TestMonitorOptions(t *testing.T) {
	for i, c := range []struct {
		url, state string
		opts       []monitor.Option
	}{
		{"ftp://x", "s", nil},
		{"http://x", "", nil},
		{"http://x", "s", []monitor.Option{monitor.WithWatch("")}},
		{"http://x", "s", []monitor.Option{monitor.WithVerifierKey("nope")}},
		{"http://x", "s", []monitor.Option{monitor.WithConcurrency(0)}},
	} {
		if _, err := monitor.New(c.url, c.state, c.opts...); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}

// TestMonitorRequiresWitnesses: with --witness, checkpoints must carry the
// witnesses' cosignatures.
func TestMonitorRequiresWitnesses(t *testing.T) {
	key, keyFile := newKey(t)
	w, err := witnesstest.New("w.test")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stranger, err := witnesstest.New("stranger.test")
	if err != nil {
		t.Fatal(err)
	}
	stranger.Close()
	dir := t.TempDir()
	opts := transparency.Options{Dir: dir, Issuer: "https://ts.test"}
	vkey, err := transparency.InitLogKey(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddLog(vkey); err != nil {
		t.Fatal(err)
	}
	s := startTSWith(t, dir, key, keyFile, &transparency.Witnessing{Witnesses: []transparency.WitnessEndpoint{{URL: w.URL, Key: w.VKey}}})
	s.register(t, watched+"a")
	trusted := func(k string) scitt.Witnesses {
		v, err := scitt.ParseWitnessKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return scitt.Witnesses{Keys: []note.Verifier{v}, Threshold: 1}
	}
	if _, _, err := step(t, s.srv.URL, filepath.Join(t.TempDir(), "s"), monitor.WithWitnesses(trusted(w.VKey))); err != nil {
		t.Fatalf("cosigned checkpoint: %v", err)
	}
	_, _, err = step(t, s.srv.URL, filepath.Join(t.TempDir(), "s"), monitor.WithWitnesses(trusted(stranger.VKey)))
	if !errors.Is(err, monitor.ErrBadCheckpoint) || !errors.Is(err, scitt.ErrWitness) {
		t.Fatalf("checkpoint not cosigned by the required witness: %v", err)
	}
}
