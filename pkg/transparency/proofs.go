package transparency

import (
	"context"
	"fmt"
	"sync"

	"github.com/transparency-dev/tessera/client"
)

// proofCache keeps one Tessera ProofBuilder for the newest checkpoint size.
// A ProofBuilder is not safe for concurrent use, and it caches the tiles it
// has fetched, so every proof at one size shares it under a lock; a proof
// for an older size gets a short-lived builder of its own.
type proofCache struct {
	fetch client.TileFetcherFunc

	mu   sync.Mutex
	size uint64
	pb   *client.ProofBuilder
}

func (c *proofCache) builder(ctx context.Context, size uint64) (*client.ProofBuilder, bool, error) {
	if c.pb != nil && c.size == size {
		return c.pb, true, nil
	}
	pb, err := client.NewProofBuilder(ctx, size, c.fetch)
	if err != nil {
		return nil, false, fmt.Errorf("proof builder at size %d: %w", size, err)
	}
	if size > c.size {
		c.pb, c.size = pb, size
		return pb, true, nil
	}
	return pb, false, nil
}

// inclusion returns the RFC 9162 audit path of index in the tree of size.
func (c *proofCache) inclusion(ctx context.Context, size, index uint64) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pb, _, err := c.builder(ctx, size)
	if err != nil {
		return nil, err
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, size, err)
	}
	return p, nil
}

// consistency returns the RFC 9162 consistency path between two sizes.
func (c *proofCache) consistency(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pb, _, err := c.builder(ctx, size2)
	if err != nil {
		return nil, err
	}
	p, err := pb.ConsistencyProof(ctx, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d→%d: %w", size1, size2, err)
	}
	return p, nil
}
