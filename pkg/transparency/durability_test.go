package transparency_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

// The durability tests damage a real data directory after registering
// statements concurrently through the HTTP handler, then restart: every
// acknowledged entry must be there with a verifying receipt, or the service
// must refuse to start and say why (docs/design/transparency.md, "Durability
// and corruption").

type durEnv struct {
	t      *testing.T
	dir    string
	issuer *keys.PrivateKey
	trust  string
}

func newDurEnv(t *testing.T) *durEnv {
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	return &durEnv{t: t, dir: t.TempDir(), issuer: issuer, trust: writeKey(t, t.TempDir(), "issuer.jwk", issuer)}
}

func (d *durEnv) options(mod ...func(*transparency.Options)) transparency.Options {
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{d.trust}, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	o := transparency.Options{Dir: d.dir, Policy: pol, Issuer: "https://durable.test", BatchMaxAge: 10 * time.Millisecond}
	for _, m := range mod {
		m(&o)
	}
	return o
}

// running is a service with its HTTP handler.
type running struct {
	svc    *transparency.Service
	srv    *httptest.Server
	client *scrapi.Client
}

func (d *durEnv) start(mod ...func(*transparency.Options)) *running {
	d.t.Helper()
	svc, err := transparency.Open(d.t.Context(), d.options(mod...))
	if err != nil {
		d.t.Fatalf("open: %v", err)
	}
	r := &running{svc: svc, srv: httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))}
	r.client, _ = scrapi.NewClient(r.srv.URL, scrapi.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	return r
}

func (r *running) stop(t *testing.T) {
	r.srv.Close()
	if err := r.svc.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
}

type ackedEntry struct {
	stmt, receipt []byte
	id            string
}

// load registers n statements from 16 concurrent clients through the HTTP
// handler and returns those acknowledged with a receipt.
func (d *durEnv) load(r *running, tag string, n int) []ackedEntry {
	d.t.Helper()
	var mu sync.Mutex
	var acked []ackedEntry
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				stmt, err := scitt.SignStatement(d.t.Context(), d.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: fmt.Sprintf("%s/%d", tag, i)}, fmt.Appendf(nil, "%s payload %d", tag, i))
				if err != nil {
					d.t.Error(err)
					return
				}
				reg, err := r.client.Register(d.t.Context(), stmt)
				if err != nil {
					d.t.Errorf("register: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, ackedEntry{stmt, reg.Receipt, reg.EntryID})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(acked) != n {
		d.t.Fatalf("%d of %d registrations acknowledged", len(acked), n)
	}
	return acked
}

// checkAll checks that every acknowledged entry has a verifying receipt
// (the old one and a fresh one) except those listed as lost.
func checkAll(t *testing.T, r *running, acked []ackedEntry, lost map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	keys := r.svc.Keys()
	for _, a := range acked {
		verifyReceipt(t, a.stmt, a.receipt, keys)
		if lost[a.id] {
			resp, err := http.Get(r.srv.URL + "/entries/" + a.id)
			if err != nil {
				t.Fatal(err)
			}
			if p := readProblem(t, resp); resp.StatusCode != http.StatusNotFound || p.Detail == "" {
				t.Fatalf("lost entry %s: GET = %d, want 404 with a detail", a.id, resp.StatusCode)
			}
			continue
		}
		rc, err := r.client.Receipt(ctx, a.id)
		if err != nil {
			t.Fatalf("acknowledged entry %s lost: %v", a.id, err)
		}
		verifyReceipt(t, a.stmt, rc, keys)
	}
}

func leafIndex(t *testing.T, receipt []byte) uint64 {
	t.Helper()
	r, err := scitt.ParseReceipt(receipt)
	if err != nil || len(r.Inclusion) != 1 {
		t.Fatalf("parse receipt: %v", err)
	}
	return r.Inclusion[0].LeafIndex
}

// storeRecords returns the offset and type of each record of the statement
// store (format documented in storage/posix/statements.go).
func storeRecords(t *testing.T, path string) (offs []int64, types []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+9 <= len(b); {
		offs = append(offs, int64(off))
		types = append(types, b[off+8])
		off += 8 + int(binary.BigEndian.Uint32(b[off:]))
	}
	return offs, types
}

// TestDurabilityCorruptRecord flips one bit at 10 % of the statement store.
// Before: the store was silently cut there (most acknowledged entries 404).
// Now: the service refuses to start, naming the file and offset; --repair
// rebuilds everything but the damaged statement, which registering it again
// restores at its old index.
func TestDurabilityCorruptRecord(t *testing.T) {
	d := newDurEnv(t)
	r := d.start()
	acked := d.load(r, "flip", 400)
	r.stop(t)

	path := filepath.Join(d.dir, "statements")
	offs, types := storeRecords(t, path)
	// Damage a statement record (not an index record) near 10 %.
	fi, _ := os.Stat(path)
	target := -1
	for i, o := range offs {
		if o >= fi.Size()/10 && types[i] == 0x01 {
			target = i
			break
		}
	}
	b, _ := os.ReadFile(path)
	b[offs[target]+60] ^= 0x04
	writeFile(t, path, b)

	_, err := transparency.Open(t.Context(), d.options())
	var ce *posix.CorruptError
	if !errors.Is(err, storage.ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path || ce.Offset != offs[target] {
		t.Fatalf("open on a damaged store: %v; want ErrCorrupt naming %s at offset %d", err, path, offs[target])
	}
	rep, err := transparency.Repair(t.Context(), d.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) != 1 || rep.Restored != len(acked) { // +1 policy statement -1 lost
		t.Fatalf("repair restored %d and lost %d; want %d and 1", rep.Restored, len(rep.Lost), len(acked))
	}
	lostID := fmt.Sprintf("%x", rep.Lost[0].Entry)
	r = d.start()
	defer r.stop(t)
	checkAll(t, r, acked, map[string]bool{lostID: true})
	for _, a := range acked {
		if a.id != lostID {
			continue
		}
		again, err := r.client.Register(t.Context(), a.stmt)
		if err != nil {
			t.Fatal(err)
		}
		verifyReceipt(t, a.stmt, again.Receipt, r.svc.Keys())
		if leafIndex(t, again.Receipt) != leafIndex(t, a.receipt) || leafIndex(t, again.Receipt) != rep.Lost[0].Index {
			t.Fatalf("re-registered lost statement at index %d, was %d", leafIndex(t, again.Receipt), leafIndex(t, a.receipt))
		}
	}
}

// TestDurabilityPowerLoss drops the unsynced tail of the statement store
// (index records are written without their own fsync) after a burst of
// registrations. Before: recovery stopped about halfway through the log and
// appended the rest again (two leaves for one entry). Now it finds every
// one: the log does not grow, every receipt verifies.
func TestDurabilityPowerLoss(t *testing.T) {
	d := newDurEnv(t)
	// Appends wait until every statement is stored, so that all index
	// records follow the last fsync.
	gate := make(chan struct{})
	r := d.start(func(o *transparency.Options) {
		o.Backend = func(ctx context.Context, bc transparency.BackendConfig) (storage.Log, storage.Statements, error) {
			lg, st, err := posix.Open(ctx, posix.Config{Dir: d.dir, Signer: bc.Signer, BatchMaxAge: 10 * time.Millisecond})
			return gatedLog{lg, gate}, st, err
		}
	})
	const n = 900
	stmts := make([][]byte, n)
	regs := make([]*transparency.Registration, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				stmt, err := scitt.SignStatement(t.Context(), d.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: fmt.Sprintf("p/%d", i)}, fmt.Appendf(nil, "power %d", i))
				if err != nil {
					t.Error(err)
					return
				}
				stmts[i] = stmt
				if regs[i], err = r.svc.Register(t.Context(), stmt); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(gate)
	if t.Failed() {
		t.FailNow()
	}
	acked := make([]ackedEntry, n)
	for i, reg := range regs {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		rc, err := r.svc.AwaitReceipt(ctx, reg.Entry)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		acked[i] = ackedEntry{stmts[i], rc, reg.ID()}
	}
	size, _ := r.svc.Log().IntegratedSize(t.Context())
	r.stop(t)

	// The power loss: everything after the last statement record, which was
	// fsynced, is gone.
	path := filepath.Join(d.dir, "statements")
	offs, types := storeRecords(t, path)
	last, dropped := 0, 0
	for i, ty := range types {
		if ty == 0x01 {
			last, dropped = i, 0
		} else {
			dropped++
		}
	}
	if dropped < n/2 {
		t.Fatalf("only %d index records after the last statement record; the test does not test", dropped)
	}
	b, _ := os.ReadFile(path)
	if err := os.Truncate(path, offs[last]+8+int64(binary.BigEndian.Uint32(b[offs[last]:]))); err != nil {
		t.Fatal(err)
	}
	t.Logf("dropped %d unsynced index records of %d entries", dropped, size)

	r = d.start()
	defer r.stop(t)
	after, _ := r.svc.Log().IntegratedSize(t.Context())
	if after != size {
		t.Fatalf("log size %d after recovery, %d before: recovery appended %d entries again", after, size, after-size)
	}
	checkAll(t, r, acked, nil)
	for _, a := range acked {
		rc, _ := r.client.Receipt(t.Context(), a.id)
		if leafIndex(t, rc) != leafIndex(t, a.receipt) {
			t.Fatalf("entry %s moved from index %d to %d", a.id, leafIndex(t, a.receipt), leafIndex(t, rc))
		}
	}
}

// TestDurabilityMissingOrTruncatedStore deletes, empties and truncates the
// statement store, and deletes the log, after registrations: each refuses
// to start. Before: the service started and answered 404 for entries the
// log holds.
func TestDurabilityMissingOrTruncatedStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"statements deleted", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "statements")) }},
		{"statements empty", func(t *testing.T, dir string) { os.Truncate(filepath.Join(dir, "statements"), 0) }},
		{"statements truncated at half", func(t *testing.T, dir string) {
			fi, _ := os.Stat(filepath.Join(dir, "statements"))
			os.Truncate(filepath.Join(dir, "statements"), fi.Size()/2)
		}},
		{"log deleted", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, "log")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDurEnv(t)
			r := d.start()
			acked := d.load(r, "m", 120)
			r.stop(t)
			tc.damage(t, d.dir)
			svc, err := transparency.Open(t.Context(), d.options())
			if !errors.Is(err, storage.ErrCorrupt) {
				if err == nil {
					svc.Close(context.Background())
				}
				t.Fatalf("open after %s: %v, want ErrCorrupt", tc.name, err)
			}
			rep, err := transparency.Repair(t.Context(), d.dir)
			if tc.name == "log deleted" {
				if !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("repair without a log: %v, want ErrCorrupt (restore the log first)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lost := map[string]bool{}
			for _, l := range rep.Lost {
				lost[fmt.Sprintf("%x", l.Entry)] = true
			}
			if len(lost) == 0 || rep.Restored+len(rep.Lost) != len(acked)+1 {
				t.Fatalf("repair: %d restored, %d lost of %d entries", rep.Restored, len(rep.Lost), len(acked)+1)
			}
			r = d.start()
			defer r.stop(t)
			checkAll(t, r, acked, lost)
		})
	}
}

// TestDurabilityDoubleOpen: while a server process serves a data directory
// under load, a second open of the directory fails with ErrLocked. Before:
// both served and lost each other's records. Once the first process is
// killed, the directory opens and nothing acknowledged is missing.
func TestDurabilityDoubleOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	d := newDurEnv(t)
	srv := startChild(t, d.dir, d.trust)
	crashIssuer := func(o *transparency.Options) { o.Issuer = "https://crash.test" } // the child's
	c, _ := scrapi.NewClient(srv.url, scrapi.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	r := &running{client: c}
	acked := d.load(r, "first", 100)
	done := make(chan []ackedEntry)
	go func() { done <- d.load(r, "during", 100) }()
	_, err := transparency.Open(t.Context(), d.options(crashIssuer))
	if !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("second open of a served directory: %v, want ErrLocked", err)
	}
	if _, err := transparency.Repair(t.Context(), d.dir); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("repair of a served directory: %v, want ErrLocked", err)
	}
	acked = append(acked, <-done...)
	srv.cmd.Process.Kill()
	srv.cmd.Wait()
	run := d.start(crashIssuer)
	defer run.stop(t)
	checkAll(t, run, acked, nil)
}

// gatedLog is a log whose appends wait until gate is closed.
type gatedLog struct {
	storage.Log
	gate chan struct{}
}

func (l gatedLog) Append(ctx context.Context, e storage.Entry) (uint64, error) {
	select {
	case <-l.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return l.Log.Append(ctx, e)
}
