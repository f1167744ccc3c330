package transparency_test

import (
	"testing"

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
