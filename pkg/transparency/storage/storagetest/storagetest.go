// Package storagetest is the conformance test that every storage backend of
// the Transparency Service must pass (style.md §24). A backend's own test
// calls Run with a function that opens the backend on fixed underlying storage,
// so that reopening it sees what an earlier instance wrote.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/client"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// Opener opens the backend under test. Each call must open the same
// underlying storage; the previous instance has been closed.
type Opener func(ctx context.Context) (storage.Log, storage.Statements, error)

// Run runs the conformance suite against the backend opened by open.
// origin is the checkpoint origin the backend's signer uses.
func Run(t *testing.T, open Opener, origin string) {
	t.Helper()
	ctx := t.Context()
	lg, st, err := open(ctx)
	if err != nil {
		t.Fatalf("open backend: %v", err)
	}

	entries := make([]storage.Entry, 40)
	for i := range entries {
		entries[i] = sha256.Sum256(fmt.Appendf(nil, "statement %d", i))
	}
	reg := time.Unix(1_700_000_000, 123456789)

	t.Run("statements", func(t *testing.T) {
		testStatements(t, st, entries, reg)
	})
	indices := make([]uint64, len(entries))
	t.Run("log append", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, len(entries))
		for i := range entries {
			wg.Go(func() {
				indices[i], errs[i] = lg.Append(ctx, entries[i])
				if errs[i] == nil {
					errs[i] = st.SetIndex(ctx, entries[i], indices[i])
				}
			})
		}
		wg.Wait()
		seen := map[uint64]bool{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			if seen[indices[i]] {
				t.Fatalf("index %d assigned twice", indices[i])
			}
			seen[indices[i]] = true
		}
		n, err := lg.IntegratedSize(ctx)
		if err != nil || n < uint64(len(entries)) {
			t.Fatalf("IntegratedSize = %d, %v; want ≥ %d", n, err, len(entries))
		}
	})
	t.Run("checkpoint and proofs", func(t *testing.T) {
		cp := awaitCheckpoint(t, lg, origin, uint64(len(entries)))
		testProofs(t, lg, cp, entries, indices)
	})
	if err := st.Close(); err != nil {
		t.Fatalf("close statements: %v", err)
	}
	if err := lg.Close(ctx); err != nil {
		t.Fatalf("close log: %v", err)
	}

	t.Run("reopen", func(t *testing.T) {
		lg2, st2, err := open(ctx)
		if err != nil {
			t.Fatalf("reopen backend: %v", err)
		}
		defer func() {
			st2.Close()
			lg2.Close(ctx)
		}()
		for i, e := range entries {
			rec, err := st2.Get(ctx, e)
			if err != nil {
				t.Fatalf("Get after reopen: %v", err)
			}
			if !rec.Indexed || rec.Index != indices[i] || !rec.Registered.Equal(reg) {
				t.Fatalf("record after reopen = %+v, want index %d registered %v", rec, indices[i], reg)
			}
		}
		if un, err := st2.Unindexed(ctx); err != nil || len(un) != 0 {
			t.Fatalf("Unindexed after reopen = %d entries, %v; want none", len(un), err)
		}
		// Registered again after a restart (no cache of it): the first
		// registration stands, with its time, index and bytes.
		again, created, err := st2.Put(ctx, entries[1], []byte("other bytes"), reg.Add(time.Hour))
		if err != nil || created || !again.Registered.Equal(reg) || !again.Indexed || again.Index != indices[1] {
			t.Fatalf("Put of an entry stored before the reopen = %+v, created %v, %v; want the first record, not created", again, created, err)
		}
		if b, err := st2.Statement(ctx, entries[1]); err != nil || bytes.Equal(b, []byte("other bytes")) {
			t.Fatalf("statement after a second Put = %q, %v; want the first bytes", b, err)
		}
		if rec, err := st2.Get(ctx, entries[1]); err != nil || !rec.Registered.Equal(reg) {
			t.Fatalf("Get after a second Put = %+v, %v; want registered %v", rec, err, reg)
		}
		cp := awaitCheckpoint(t, lg2, origin, uint64(len(entries)))
		testProofs(t, lg2, cp, entries, indices)
		next := sha256.Sum256([]byte("after reopen"))
		idx, err := lg2.Append(ctx, next)
		if err != nil {
			t.Fatalf("append after reopen: %v", err)
		}
		if idx < uint64(len(entries)) {
			t.Fatalf("append after reopen got index %d, which reuses an old index", idx)
		}
	})
}

func testStatements(t *testing.T, st storage.Statements, entries []storage.Entry, reg time.Time) {
	ctx := t.Context()
	if _, err := st.Get(ctx, entries[0]); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := st.Statement(ctx, entries[0]); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Statement(unknown) error = %v, want ErrNotFound", err)
	}
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() {
			rec, created, err := st.Put(ctx, e, body(i), reg)
			if err != nil || !created || rec.Entry != e || rec.Indexed || rec.Size != len(body(i)) {
				t.Errorf("Put(%d) = %+v, %v, %v", i, rec, created, err)
			}
		})
	}
	wg.Wait()
	// A second Put keeps the first statement and registration time.
	rec, created, err := st.Put(ctx, entries[0], []byte("other bytes"), reg.Add(time.Hour))
	if err != nil || created || !rec.Registered.Equal(reg) {
		t.Fatalf("duplicate Put = %+v, created %v, %v; want the first record", rec, created, err)
	}
	for i, e := range entries {
		got, err := st.Statement(ctx, e)
		if err != nil || !bytes.Equal(got, body(i)) {
			t.Fatalf("Statement(%d) = %q, %v", i, got, err)
		}
	}
	un, err := st.Unindexed(ctx)
	if err != nil || len(un) != len(entries) {
		t.Fatalf("Unindexed = %d entries, %v; want %d", len(un), err, len(entries))
	}
	if err := st.SetIndex(ctx, sha256.Sum256([]byte("never stored")), 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("SetIndex(unknown) error = %v, want ErrNotFound", err)
	}
}

func body(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100+i) }

// awaitCheckpoint polls until a checkpoint of at least size is published and
// returns it parsed (signature not checked: the backend owns the signer).
func awaitCheckpoint(t *testing.T, lg storage.Log, origin string, size uint64) *log.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		raw, err := lg.ReadCheckpoint(t.Context())
		if err == nil {
			var cp log.Checkpoint
			body := raw[:bytes.Index(raw, []byte("\n\n"))+1]
			if _, err := cp.Unmarshal(body); err != nil {
				t.Fatalf("parse checkpoint: %v", err)
			}
			if cp.Origin != origin {
				t.Fatalf("checkpoint origin = %q, want %q", cp.Origin, origin)
			}
			if cp.Size >= size {
				return &cp
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of size ≥ %d within 10s", size)
	return nil
}

// testProofs checks that every entry is in its bundle and provable against cp.
func testProofs(t *testing.T, lg storage.Log, cp *log.Checkpoint, entries []storage.Entry, indices []uint64) {
	ctx := t.Context()
	pb, err := client.NewProofBuilder(ctx, cp.Size, lg.ReadTile)
	if err != nil {
		t.Fatalf("NewProofBuilder: %v", err)
	}
	for i, e := range entries {
		idx := indices[i]
		bundle, err := client.GetEntryBundle(ctx, lg.ReadEntryBundle, idx/256, cp.Size)
		if err != nil {
			t.Fatalf("GetEntryBundle(%d): %v", idx/256, err)
		}
		if got := bundleEntry(bundle, idx%256); !bytes.Equal(got, e[:]) {
			t.Fatalf("bundle entry %d = %x, want %x", idx, got, e)
		}
		p, err := pb.InclusionProof(ctx, idx)
		if err != nil {
			t.Fatalf("InclusionProof(%d): %v", idx, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, rfc6962.DefaultHasher.HashLeaf(e[:]), p, cp.Hash); err != nil {
			t.Fatalf("inclusion proof for %d does not verify: %v", idx, err)
		}
	}
}

func bundleEntry(b api.EntryBundle, i uint64) []byte {
	if i >= uint64(len(b.Entries)) {
		return nil
	}
	return b.Entries[i]
}
