package transparency_test

import (
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/loadgen"
)

// TestLoadgen runs the load generator in both modes against a live service:
// every registration gets a receipt that verifies.
func TestLoadgen(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	for _, sync := range []bool{false, true} {
		rep, err := loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: 80, Concurrency: 8, PayloadSize: 64, Sync: sync, Window: 4})
		if err != nil {
			t.Fatalf("sync=%v: %v", sync, err)
		}
		if rep.Verified != 80 || rep.P50 <= 0 || rep.P99 < rep.P50 || rep.Rate() <= 0 {
			t.Fatalf("sync=%v: report %+v", sync, rep)
		}
	}
}

// TestLoadgenClosedLoopDuration runs the closed loop (one request in flight
// per client) for a fixed time: it stops before the pre-signed pool runs
// out, every registration it started is counted and verified, and only the
// receipts after the warm-up and before the end are measured.
func TestLoadgenClosedLoopDuration(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	const pool = 400
	rep, err := loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: pool, Concurrency: 4, PayloadSize: 64,
		Sync: true, Window: 1, Duration: 600 * time.Millisecond, Warmup: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count < 4 || rep.Count >= pool || rep.Verified != rep.Count || rep.Elapsed < 600*time.Millisecond ||
		rep.Measured <= 0 || rep.Measured >= rep.Count || rep.WindowStart != 200*time.Millisecond || rep.WindowEnd != 600*time.Millisecond ||
		rep.Rate() != float64(rep.Measured)/0.4 {
		t.Fatalf("report %+v", rep)
	}
	// A pool that runs out ends the window early.
	rep, err = loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: 8, Concurrency: 2, PayloadSize: 64,
		Sync: true, Window: 1, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 8 || rep.Verified != 8 || rep.WindowEnd >= time.Minute || rep.WindowEnd > rep.Elapsed {
		t.Fatalf("exhausted pool: report %+v", rep)
	}
	if _, err := loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: 1, Concurrency: 1, Duration: -1}); err == nil {
		t.Fatal("negative duration accepted")
	}
	if _, err := loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: 1, Concurrency: 1, Duration: time.Second, Warmup: time.Second}); err == nil {
		t.Fatal("warm-up as long as the duration accepted")
	}
}
