package transparency_test

// Storage faults seen through the HTTP API: a full disk, a log whose appends
// fail, a store that does not answer in time.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

// fullStore is a statement store whose writes fail as on a full disk while
// full is set.
type fullStore struct {
	storage.Statements
	full *atomic.Bool
}

func (s fullStore) SetIndex(ctx context.Context, e storage.Entry, index uint64) error {
	if s.full.Load() {
		return fmt.Errorf("write statement store: %w: %w", storage.ErrNoSpace, syscall.ENOSPC)
	}
	return s.Statements.SetIndex(ctx, e, index)
}

func (s fullStore) Put(ctx context.Context, e storage.Entry, b []byte, at time.Time) (storage.Record, bool, error) {
	if s.full.Load() {
		return storage.Record{}, false, fmt.Errorf("write statement store: %w: %w", storage.ErrNoSpace, syscall.ENOSPC)
	}
	return s.Statements.Put(ctx, e, b, at)
}

// failingLog is a log whose appends fail while failing is set.
type failingLog struct {
	storage.Log
	failing *atomic.Bool
}

func (l failingLog) Append(ctx context.Context, e storage.Entry) (uint64, error) {
	if l.failing.Load() {
		return 0, fmt.Errorf("append to log: %w", syscall.ENOSPC)
	}
	return l.Log.Append(ctx, e)
}

func faultyBackend(d *durEnv, full, failing *atomic.Bool) func(*transparency.Options) {
	return func(o *transparency.Options) {
		o.Backend = func(ctx context.Context, bc transparency.BackendConfig) (storage.Log, storage.Statements, error) {
			lg, st, err := posix.Open(ctx, posix.Config{Dir: d.dir, Signer: bc.Signer, BatchMaxAge: 10 * time.Millisecond})
			if err != nil {
				return nil, nil, err
			}
			return failingLog{lg, failing}, fullStore{st, full}, nil
		}
	}
}

// TestFullDisk: a registration that cannot be stored because the disk is
// full gets 503 + Retry-After with concise problem details (before: 500), and
// succeeds once there is space.
func TestFullDisk(t *testing.T) {
	d := newDurEnv(t)
	var full, failing atomic.Bool
	r := d.start(faultyBackend(d, &full, &failing))
	defer r.stop(t)
	full.Store(true)
	stmt, _ := scitt.SignStatement(t.Context(), d.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte("full"))
	resp, err := http.Post(r.srv.URL+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	p := readProblem(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || p.Title == "" {
		t.Fatalf("POST on a full disk = %d, Retry-After %q, problem %+v; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), p)
	}
	full.Store(false)
	reg, err := r.client.Register(t.Context(), stmt)
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, stmt, reg.Receipt, r.svc.Keys())
}

// TestAppendFailureIsRetried: a registration acknowledged with 303 whose
// log append (or the recording of its index) fails is retried, and GET
// /entries/{id} reports the failure (503 + Retry-After) meanwhile. Before:
// the append was given up and the entry answered 302 until the next restart.
func TestAppendFailureIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		// Set by the test: the store, or the log, fails (the store only
		// after the statement was stored).
		failLog bool
	}{{"log append fails", true}, {"recording the index fails", false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDurEnv(t)
			var full, failing atomic.Bool
			r := d.start(faultyBackend(d, &full, &failing))
			defer r.stop(t)
			waitHealthy(t, r.srv.URL)
			stmt, _ := scitt.SignStatement(t.Context(), d.issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "s"}, []byte(tc.name))
			if tc.failLog {
				failing.Store(true)
			} else {
				// Store the statement, then fail the index record: register
				// returns once stored; the append runs in the background.
				failing.Store(true)
				if _, err := r.svc.Register(t.Context(), stmt); err != nil {
					t.Fatal(err)
				}
				full.Store(true)
				failing.Store(false)
			}
			async, _ := scrapi.NewClient(r.srv.URL, scrapi.WithRespondAsync())
			loc, reg, err := async.Submit(t.Context(), stmt)
			if err != nil || reg != nil {
				t.Fatalf("async submit = %v, %v; want 303", reg, err)
			}
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			var status int
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				req, _ := http.NewRequest(http.MethodGet, loc, nil)
				req.Header.Set("Prefer", "wait=0")
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				status = resp.StatusCode
				if status == http.StatusServiceUnavailable {
					if p := readProblem(t, resp); resp.Header.Get("Retry-After") == "" || p.Detail == "" {
						t.Fatalf("failing append: 503 without Retry-After or detail")
					}
					break
				}
				resp.Body.Close()
			}
			if status != http.StatusServiceUnavailable {
				t.Fatalf("GET while the append fails = %d, want 503 reporting the failure", status)
			}
			failing.Store(false)
			full.Store(false)
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			c, _ := scrapi.NewClient(r.srv.URL, scrapi.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
			rc, err := c.Receipt(ctx, loc[len(loc)-64:])
			if err != nil {
				t.Fatalf("receipt after the storage recovered (no restart): %v", err)
			}
			verifyReceipt(t, stmt, rc, r.svc.Keys())
			if n, _ := r.svc.Log().IntegratedSize(t.Context()); n != 2 {
				t.Fatalf("log size %d, want 2 (policy + the entry once)", n)
			}
		})
	}
}

// slowStore is a statement store whose reads do not answer (until the
// caller gives up) while slow is set, as a database whose connection pool is
// saturated.
type slowStore struct {
	storage.Statements
	slow *atomic.Bool
}

func (s slowStore) Get(ctx context.Context, e storage.Entry) (storage.Record, error) {
	if s.slow.Load() {
		<-ctx.Done()
		return storage.Record{}, fmt.Errorf("read statement record: %w", ctx.Err())
	}
	return s.Statements.Get(ctx, e)
}

// TestStorageBusy: a receipt request whose storage read outlasts the wait
// gets 503 "Storage Busy" with Retry-After and a detail saying so (before:
// "Request Cancelled", as if the client had gone away).
func TestStorageBusy(t *testing.T) {
	d := newDurEnv(t)
	var slow atomic.Bool
	r := d.start(func(o *transparency.Options) {
		o.RegistrationWait = 300 * time.Millisecond
		o.Backend = func(ctx context.Context, bc transparency.BackendConfig) (storage.Log, storage.Statements, error) {
			lg, st, err := posix.Open(ctx, posix.Config{Dir: d.dir, Signer: bc.Signer, BatchMaxAge: 10 * time.Millisecond})
			return lg, slowStore{st, &slow}, err
		}
	})
	defer r.stop(t)
	slow.Store(true)
	id := strings.Repeat("ab", 32)
	resp, err := http.Get(r.srv.URL + "/entries/" + id)
	if err != nil {
		t.Fatal(err)
	}
	p := readProblem(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		p.Title != "Storage Busy" || !strings.Contains(p.Detail, "did not answer within 300ms") {
		t.Fatalf("GET with the store not answering = %d, Retry-After %q, problem %+v; want 503 Storage Busy with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), p)
	}
	slow.Store(false)
	resp, err = http.Get(r.srv.URL + "/entries/" + id)
	if err != nil {
		t.Fatal(err)
	}
	if p := readProblem(t, resp); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of an unknown entry once the store answers = %d %+v, want 404", resp.StatusCode, p)
	}
}
