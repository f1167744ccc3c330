package transparency

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/trustfabric/trustfabric/internal/merklehash"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// Receipt returns the receipt of a registered entry, or an error wrapping
// ErrPending (not yet covered by a published checkpoint) or ErrNotFound.
func (s *Service) Receipt(ctx context.Context, entry storage.Entry) ([]byte, error) {
	if r := s.receipts.get(entry); r != nil {
		return r, nil
	}
	rec, err := s.Lookup(ctx, entry)
	if err != nil {
		return nil, err
	}
	cp := s.follow.latest()
	if !rec.Indexed {
		return nil, s.pending(entry)
	}
	if cp == nil || cp.Size <= rec.Index {
		return nil, fmt.Errorf("%x: %w", entry[:], ErrPending)
	}
	return s.issueReceipt(ctx, rec, cp, true)
}

// AwaitReceipt waits until the entry's receipt is available or ctx ends
// (then it returns an error wrapping ErrPending).
func (s *Service) AwaitReceipt(ctx context.Context, entry storage.Entry) ([]byte, error) {
	return s.awaitReceipt(ctx, entry, true)
}

// awaitReceipt is AwaitReceipt; keep says whether a receipt it issues is
// cached. The request that registered the entry and waits for its receipt
// (201) does not keep it: its client has it, and a later request for it is
// rare (and cheap to answer). Kept, those receipts were ≈ 10 MB of live heap
// that nobody read, a third of the heap at moderate load.
func (s *Service) awaitReceipt(ctx context.Context, entry storage.Entry, keep bool) ([]byte, error) {
	if r := s.receipts.get(entry); r != nil {
		return r, nil
	}
	// A registration in flight (the usual case: the POST that registered
	// it) knows its record and, once appended, its index: no store reads
	// (two database round trips per registration on the AWS backend).
	s.mu.Lock()
	op := s.inflight[entry]
	s.mu.Unlock()
	if op != nil {
		if rec, ok, err := op.wait(ctx); ok {
			cp, err := s.follow.await(ctx, rec.Index)
			if err != nil {
				return nil, fmt.Errorf("%x: %w", entry[:], ErrPending)
			}
			return s.issueReceipt(ctx, rec, cp, keep)
		} else if err != nil {
			return nil, s.pending(entry)
		}
	}
	rec, err := s.Lookup(ctx, entry)
	if err != nil {
		return nil, err
	}
	if !rec.Indexed {
		s.mu.Lock()
		op := s.inflight[entry]
		s.mu.Unlock()
		if op != nil {
			select {
			case <-op.done:
			case <-ctx.Done():
				return nil, s.pending(entry)
			}
		}
		if rec, err = s.store.Get(ctx, entry); err != nil || !rec.Indexed {
			return nil, s.pending(entry)
		}
	}
	cp, err := s.follow.await(ctx, rec.Index)
	if err != nil {
		return nil, fmt.Errorf("%x: %w", entry[:], ErrPending)
	}
	return s.issueReceipt(ctx, rec, cp, keep)
}

// issueReceipt builds and signs the inclusion receipt of rec against cp,
// checks the proof against the checkpoint root, and caches it.
func (s *Service) issueReceipt(ctx context.Context, rec storage.Record, cp *checkpoint, keep bool) ([]byte, error) {
	// Issuing is short and must not fail because a wait deadline passed.
	ctx = context.WithoutCancel(ctx)
	// Prove against the newest checkpoint: its ProofBuilder is the shared,
	// warm one (sizes only grow, so it covers rec too).
	if latest := s.follow.latest(); latest != nil && latest.Size > cp.Size {
		cp = latest
	}
	path, err := s.proofs.inclusion(ctx, cp.Size, rec.Index)
	if err != nil {
		return nil, err
	}
	leaf := merklehash.Default.HashLeaf(rec.Entry[:])
	if err := proof.VerifyInclusion(merklehash.Default, rec.Index, cp.Size, leaf, path, cp.Root); err != nil {
		return nil, fmt.Errorf("inclusion proof of %d does not match checkpoint %d: %w", rec.Index, cp.Size, err)
	}
	p := scitt.InclusionProof{TreeSize: cp.Size, LeafIndex: rec.Index, Path: path}
	var r []byte
	if sharesTreeSignature(rec.Registered, cp.At) {
		ts, err := s.treeSig.get(ctx, s, cp)
		if err != nil {
			return nil, err
		}
		r, err = ts.Receipt(p)
		if err != nil {
			return nil, err
		}
	} else {
		r, err = scitt.IssueReceipt(ctx, s.keys.current,
			scitt.ReceiptClaims{Issuer: s.issuer, Subject: hex.EncodeToString(rec.Entry[:]), IssuedAt: rec.Registered, Leaf: LeafConvention.String(), Checkpoint: s.anchor(cp)},
			p, cp.Root)
		if err != nil {
			return nil, fmt.Errorf("issue receipt: %w", err)
		}
	}
	if keep {
		s.receipts.put(rec.Entry, r)
	}
	return r, nil
}

// SharedReceiptWindow bounds how long after its registration an entry's
// receipt may use the checkpoint's shared signature, whose iat is when the
// checkpoint was seen rather than when the entry was registered. Within it
// (the normal case: a receipt issued as its first checkpoint appears, ~0.2 s
// after registration) the gate's registration-time checks see a time at most
// this much late, well inside the WIT leeway (wimse.DefaultLeeway, 1 min).
// Later receipts (fetched after the cache evicted them) are signed per entry
// with sub = entry id and iat = the recorded registration time.
const SharedReceiptWindow = 10 * time.Second

func sharesTreeSignature(registered, seen time.Time) bool {
	if registered.IsZero() || seen.IsZero() || seen.Before(registered) {
		return false
	}
	return seen.Sub(registered) <= SharedReceiptWindow
}

// treeSigner keeps the receipt signature of the newest checkpoint: one ES256
// signature per checkpoint serves every receipt issued against it.
type treeSigner struct {
	mu  sync.Mutex
	cp  *checkpoint // the checkpoint cur signs (its Raw may carry cosignatures)
	cur *scitt.TreeSignature
}

func (t *treeSigner) get(ctx context.Context, s *Service, cp *checkpoint) (*scitt.TreeSignature, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cp == cp {
		return t.cur, nil
	}
	ts, err := scitt.SignTree(ctx, s.keys.current,
		scitt.ReceiptClaims{Issuer: s.issuer, IssuedAt: cp.At, Leaf: LeafConvention.String(), Checkpoint: s.anchor(cp)},
		cp.Size, cp.Root)
	if err != nil {
		return nil, fmt.Errorf("issue receipt: %w", err)
	}
	if t.cp == nil || cp.Size >= t.cp.Size {
		t.cp, t.cur = cp, ts
	}
	return ts, nil
}

// anchor is the checkpoint a receipt carries: the published checkpoint with
// its cosignatures when witnessing is configured, else none.
func (s *Service) anchor(cp *checkpoint) []byte {
	if !s.witnessed {
		return nil
	}
	return cp.Raw
}

// ConsistencyReceipt returns a consistency receipt from tree size from to
// the latest published checkpoint, whose size must be to (0 means latest).
func (s *Service) ConsistencyReceipt(ctx context.Context, from, to uint64) ([]byte, error) {
	cp := s.follow.latest()
	if cp == nil {
		return nil, fmt.Errorf("%w: no checkpoint published yet", ErrPending)
	}
	if to == 0 {
		to = cp.Size
	}
	if to != cp.Size {
		return nil, fmt.Errorf("%w: only the latest checkpoint (size %d) can be the newer size", ErrBadRange, cp.Size)
	}
	if from == 0 || from > to {
		return nil, fmt.Errorf("%w: from must be in 1..%d", ErrBadRange, to)
	}
	path, err := s.proofs.consistency(ctx, from, to)
	if err != nil {
		return nil, err
	}
	r, err := scitt.IssueConsistencyReceipt(ctx, s.keys.current,
		scitt.ReceiptClaims{Issuer: s.issuer, Subject: fmt.Sprintf("consistency %d %d", from, to), IssuedAt: time.Now()},
		scitt.ConsistencyProof{TreeSize1: from, TreeSize2: to, Path: path}, cp.Root)
	if err != nil {
		return nil, fmt.Errorf("issue consistency receipt: %w", err)
	}
	return r, nil
}
