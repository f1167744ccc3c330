package transparency

import (
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

// BenchmarkIssueReceipt measures producing one receipt on demand: the
// inclusion proof from cached tiles plus one ES256 signature.
func BenchmarkIssueReceipt(b *testing.B) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	pub, _ := issuer.Public().MarshalJWK()
	kf := b.TempDir() + "/issuer.jwk"
	os.WriteFile(kf, pub, 0o644)
	pol, _ := NewPolicy(PolicyConfig{}, []string{kf}, nil)
	svc, err := Open(b.Context(), Options{Dir: b.TempDir(), Policy: pol})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close(b.Context())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var rec storage.Record
	for i := range 600 {
		wg.Go(func() {
			e := sha256.Sum256(fmt.Append(nil, i))
			idx, err := svc.log.Append(b.Context(), e)
			if err != nil {
				b.Error(err)
			}
			if i == 300 {
				mu.Lock()
				rec = storage.Record{Entry: e, Index: idx, Indexed: true, Registered: time.Now()}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cp, err := svc.follow.await(b.Context(), 600)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := svc.issueReceipt(b.Context(), rec, cp); err != nil {
			b.Fatal(err)
		}
	}
}
