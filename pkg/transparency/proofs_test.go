package transparency

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

// TestProofCacheMatchesTessera compares every proof of the tile-level cache
// with Tessera's own ProofBuilder and verifies it against the root.
func TestProofCacheMatchesTessera(t *testing.T) {
	ctx := t.Context()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "test/log")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	lg, err := posix.OpenLog(ctx, posix.Config{Dir: t.TempDir(), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close(ctx)
	const n = 700 // spans level-0 tiles 0-2 and a partial level-1 tile
	leaves := make([][32]byte, n)
	pos := make([]uint64, n)
	// Append in order (index i = leaf i) but without waiting per entry.
	for i := range leaves {
		leaves[i] = sha256.Sum256(fmt.Append(nil, i))
	}
	for start := 0; start < n; start += 100 {
		var wg sync.WaitGroup
		for i := start; i < min(start+100, n); i++ {
			wg.Go(func() {
				got, err := lg.Append(ctx, leaves[i])
				if err != nil {
					t.Error(err)
				}
				pos[i] = got
			})
			time.Sleep(50 * time.Microsecond)
		}
		wg.Wait()
	}
	var cp *log.Checkpoint
	for deadline := time.Now().Add(10 * time.Second); ; {
		raw, err := lg.ReadCheckpoint(ctx)
		if err == nil {
			if cp, _, _, err = log.ParseCheckpoint(raw, "test/log", verifier); err != nil {
				t.Fatal(err)
			}
			if cp.Size == n {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of size 700")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pc := newProofCache(lg.ReadTile)
	pb, err := client.NewProofBuilder(ctx, cp.Size, lg.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(n) {
		got, err := pc.inclusion(ctx, cp.Size, i)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if !equalPaths(got, want) {
			t.Fatalf("inclusion proof of %d differs from Tessera's", i)
		}
	}
	for i, p := range pos {
		got, err := pc.inclusion(ctx, cp.Size, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaves[i][:]), got, cp.Hash); err != nil {
			t.Fatalf("inclusion proof of leaf %d at %d: %v", i, p, err)
		}
	}
	for _, old := range []uint64{1, 2, 255, 256, 257, 511, 512, 699, 700} {
		got, err := pc.consistency(ctx, old, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pb.ConsistencyProof(ctx, old, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if !equalPaths(got, want) {
			t.Fatalf("consistency proof %d→%d differs from Tessera's", old, cp.Size)
		}
	}
}

func equalPaths(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestSharesTreeSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name             string
		registered, seen time.Time
		want             bool
	}{
		{"seen just after registration", now, now.Add(200 * time.Millisecond), true},
		{"at the window's end", now, now.Add(SharedReceiptWindow), true},
		{"fetched long after registration", now, now.Add(SharedReceiptWindow + time.Millisecond), false},
		{"registration after the checkpoint (clock step)", now.Add(time.Second), now, false},
		{"no registration time", time.Time{}, now, false},
		{"no checkpoint time", now, time.Time{}, false},
	} {
		if got := sharesTreeSignature(c.registered, c.seen); got != c.want {
			t.Errorf("%s: sharesTreeSignature = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestReceiptSignatureShapes checks both ways a receipt is signed: shared by
// the checkpoint (no sub, iat = when the checkpoint was seen, the same
// signature for every entry) and per entry (sub = entry id, iat = the
// registration time), and that each verifies against the root.
func TestReceiptSignatureShapes(t *testing.T) {
	svc, recs, cp := serviceWithEntries(t, 600)
	rec := recs[0]
	parse := func(raw []byte) *scitt.Receipt {
		t.Helper()
		r, err := scitt.ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	rec.Registered = cp.At.Add(-300 * time.Millisecond)
	raw, err := svc.issueReceipt(t.Context(), rec, cp, true)
	if err != nil {
		t.Fatal(err)
	}
	shared := parse(raw)
	verify := func(raw []byte, e storage.Entry) {
		t.Helper()
		r := parse(raw)
		if _, err := r.VerifyInclusionOfLeaf(rfc6962.DefaultHasher.HashLeaf(e[:]), keys.Set{svc.keys.current.Public()}); err != nil {
			t.Fatalf("receipt does not verify: %v", err)
		}
	}
	verify(raw, rec.Entry)
	if shared.Subject != "" || shared.IssuedAt.Unix() != cp.At.Unix() {
		t.Fatalf("shared receipt: sub %q iat %s; want no sub and iat %s", shared.Subject, shared.IssuedAt, cp.At)
	}
	other := recs[1]
	other.Registered = rec.Registered
	raw2, err := svc.issueReceipt(t.Context(), other, cp, true)
	if err != nil {
		t.Fatal(err)
	}
	verify(raw2, other.Entry)
	if a, b := raw[len(raw)-64:], raw2[len(raw2)-64:]; !bytes.Equal(a, b) {
		t.Fatal("two receipts against one checkpoint carry different signatures; want the shared one")
	}

	svc.receipts = newReceiptCache(16)
	rec.Registered = cp.At.Add(-time.Hour)
	raw, err = svc.issueReceipt(t.Context(), rec, cp, true)
	if err != nil {
		t.Fatal(err)
	}
	per := parse(raw)
	verify(raw, rec.Entry)
	if per.Subject != fmt.Sprintf("%x", rec.Entry[:]) || per.IssuedAt.Unix() != rec.Registered.Unix() {
		t.Fatalf("per-entry receipt: sub %q iat %s; want %x and %s", per.Subject, per.IssuedAt, rec.Entry[:], rec.Registered)
	}
}
