package transparency

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// serviceWithEntries opens a service with n (> 301) appended entries and
// returns it with the records of entries 300 and 301 (appended
// concurrently, so at any index) and the checkpoint covering all n.
// trustingPolicy returns a new issuer key and a policy that trusts it.
func trustingPolicy(tb testing.TB) (*keys.PrivateKey, *Policy) {
	tb.Helper()
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		tb.Fatal(err)
	}
	pub, _ := issuer.Public().MarshalJWK()
	kf := tb.TempDir() + "/issuer.jwk"
	if err := os.WriteFile(kf, pub, 0o644); err != nil {
		tb.Fatal(err)
	}
	pol, err := NewPolicy(PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return issuer, pol
}

func serviceWithEntries(tb testing.TB, n int) (*Service, [2]storage.Record, *checkpoint) {
	_, pol := trustingPolicy(tb)
	svc, err := Open(tb.Context(), Options{Dir: tb.TempDir(), Policy: pol})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close(context.Background()) })
	var wg sync.WaitGroup
	var mu sync.Mutex
	var recs [2]storage.Record
	for i := range n {
		wg.Go(func() {
			e := sha256.Sum256(fmt.Append(nil, i))
			idx, err := svc.log.Append(tb.Context(), e)
			if err != nil {
				tb.Error(err)
			}
			if i == 300 || i == 301 {
				mu.Lock()
				recs[i-300] = storage.Record{Entry: e, Index: idx, Indexed: true, Registered: time.Now()}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cp, err := svc.follow.await(tb.Context(), uint64(n))
	if err != nil {
		tb.Fatal(err)
	}
	return svc, recs, cp
}

// BenchmarkIssueReceipt measures producing one receipt on demand: the
// inclusion proof from cached tiles plus, per entry, one ES256 signature
// ("per-entry": a receipt fetched after SharedReceiptWindow) or the
// checkpoint's shared signature ("shared": the receipt of a registration).
func BenchmarkIssueReceipt(b *testing.B) {
	svc, recs, cp := serviceWithEntries(b, 600)
	rec := recs[0]
	for _, c := range []struct {
		name       string
		registered time.Time
	}{{"shared", cp.At}, {"per-entry", cp.At.Add(-time.Hour)}} {
		b.Run(c.name, func(b *testing.B) {
			rec.Registered = c.registered
			for b.Loop() {
				if _, err := svc.issueReceipt(b.Context(), rec, cp, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestProofCacheOneReadPerTile checks concurrent requests for the same tile
// share one read (a new checkpoint wakes every waiting registration at
// once; on the AWS backend each read is an S3 GET).
func TestProofCacheOneReadPerTile(t *testing.T) {
	var reads atomic.Int64
	release := make(chan struct{})
	hashes := make([]byte, 0, 4*32)
	for i := range 4 {
		h := sha256.Sum256([]byte{byte(i)})
		hashes = append(hashes, h[:]...)
	}
	c := newProofCache(func(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
		reads.Add(1)
		<-release
		return hashes, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			tl, err := c.tile(t.Context(), tileID{0, 0, 4})
			if err == nil && len(tl.levels) != 3 {
				err = fmt.Errorf("tile of 4 hashes has %d levels, want 3", len(tl.levels))
			}
			errs <- err
		})
	}
	for reads.Load() == 0 {
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond) // let the others join the read in progress
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads of one tile by 50 concurrent requests, want 1", n)
	}
}
