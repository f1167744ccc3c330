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
// out, and every registration it started is counted and verified.
func TestLoadgenClosedLoopDuration(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	const pool = 400
	rep, err := loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: pool, Concurrency: 4, PayloadSize: 64,
		Sync: true, Window: 1, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count < 4 || rep.Count >= pool || rep.Verified != rep.Count || rep.Elapsed < 300*time.Millisecond {
		t.Fatalf("report %+v", rep)
	}
	if _, err := loadgen.Run(t.Context(), loadgen.Config{TS: e.srv.URL, Key: e.issuer, Count: 1, Concurrency: 1, Duration: -1}); err == nil {
		t.Fatal("negative duration accepted")
	}
}
