package transparency

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// serviceWithEntries opens a service with n appended entries and returns it
// with the record of entry 300 and the checkpoint covering all n.
func serviceWithEntries(tb testing.TB, n int) (*Service, storage.Record, *checkpoint) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	pub, _ := issuer.Public().MarshalJWK()
	kf := tb.TempDir() + "/issuer.jwk"
	if err := os.WriteFile(kf, pub, 0o644); err != nil {
		tb.Fatal(err)
	}
	pol, err := NewPolicy(PolicyConfig{}, []string{kf}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := Open(tb.Context(), Options{Dir: tb.TempDir(), Policy: pol})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close(context.Background()) })
	var wg sync.WaitGroup
	var mu sync.Mutex
	var rec storage.Record
	for i := range n {
		wg.Go(func() {
			e := sha256.Sum256(fmt.Append(nil, i))
			idx, err := svc.log.Append(tb.Context(), e)
			if err != nil {
				tb.Error(err)
			}
			if i == 300 {
				mu.Lock()
				rec = storage.Record{Entry: e, Index: idx, Indexed: true, Registered: time.Now()}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cp, err := svc.follow.await(tb.Context(), uint64(n))
	if err != nil {
		tb.Fatal(err)
	}
	return svc, rec, cp
}

// BenchmarkIssueReceipt measures producing one receipt on demand: the
// inclusion proof from cached tiles plus, per entry, one ES256 signature
// ("per-entry": a receipt fetched after SharedReceiptWindow) or the
// checkpoint's shared signature ("shared": the receipt of a registration).
func BenchmarkIssueReceipt(b *testing.B) {
	svc, rec, cp := serviceWithEntries(b, 600)
	for _, c := range []struct {
		name       string
		registered time.Time
	}{{"shared", cp.At}, {"per-entry", cp.At.Add(-time.Hour)}} {
		b.Run(c.name, func(b *testing.B) {
			rec.Registered = c.registered
			for b.Loop() {
				if _, err := svc.issueReceipt(b.Context(), rec, cp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
