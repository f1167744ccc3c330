package transparency

import (
	"context"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/trustfabric/trustfabric/internal/merklehash"
)

// proofCache builds RFC 9162 proofs from the log's hash tiles. It plays the
// role of Tessera's client.ProofBuilder (which is not safe for concurrent use
// and re-hashes a tile's inner levels on every lookup) but keeps, for each
// tile it has read, every level inside the tile, so that a proof is a few
// map lookups and no hashing: at thousands of receipts per second the
// re-hashing was the service's largest CPU cost after signatures. Node
// selection and the ephemeral right-border nodes come from
// transparency-dev/merkle's proof.Inclusion / proof.Consistency.
//
// Full tiles are immutable and cached (bounded); a partial tile is cached
// under its width and replaced when the tile grows.
type proofCache struct {
	fetch client.TileFetcherFunc

	mu    sync.RWMutex
	tiles map[tileID]*tileLevels
	// loading holds the tile reads in progress: when a checkpoint appears,
	// every waiting registration asks for the same new partial tiles at
	// once, and one read serves them all (on the AWS backend each read is an
	// S3 GET; without this, hundreds of identical GETs and their
	// connections made the service's memory peak, docs/benchmarks.md).
	loading map[tileID]*tileLoad
}

type tileLoad struct {
	done chan struct{}
	t    *tileLevels
	err  error
}

type tileID struct {
	level, index uint64
	width        uint8 // 0 = full tile
}

// tileLevels holds levels[0] = the tile's stored hashes and levels[k] their
// ancestors k levels up inside the tile.
type tileLevels struct {
	levels [][][]byte
}

const maxCachedTiles = 512

func newProofCache(fetch client.TileFetcherFunc) *proofCache {
	return &proofCache{fetch: fetch, tiles: map[tileID]*tileLevels{}, loading: map[tileID]*tileLoad{}}
}

func (c *proofCache) tile(ctx context.Context, id tileID) (*tileLevels, error) {
	c.mu.RLock()
	t := c.tiles[id]
	c.mu.RUnlock()
	if t != nil {
		return t, nil
	}
	c.mu.Lock()
	if t := c.tiles[id]; t != nil {
		c.mu.Unlock()
		return t, nil
	}
	if l := c.loading[id]; l != nil {
		c.mu.Unlock()
		select {
		case <-l.done:
			return l.t, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &tileLoad{done: make(chan struct{})}
	c.loading[id] = l
	c.mu.Unlock()
	l.t, l.err = c.load(context.WithoutCancel(ctx), id)
	c.mu.Lock()
	delete(c.loading, id)
	c.mu.Unlock()
	close(l.done)
	return l.t, l.err
}

// load reads a tile, computes its inner levels and caches it.
func (c *proofCache) load(ctx context.Context, id tileID) (*tileLevels, error) {
	raw, err := c.fetch(ctx, id.level, id.index, id.width)
	if err != nil {
		return nil, fmt.Errorf("read tile %d/%d.p/%d: %w", id.level, id.index, id.width, err)
	}
	var ht api.HashTile
	if err := ht.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("parse tile %d/%d: %w", id.level, id.index, err)
	}
	t := &tileLevels{levels: [][][]byte{ht.Nodes}}
	for prev := ht.Nodes; len(prev) >= 2; {
		next := make([][]byte, len(prev)/2)
		for j := range next {
			next[j] = merklehash.Default.HashChildren(prev[2*j], prev[2*j+1])
		}
		t.levels = append(t.levels, next)
		prev = next
	}
	c.mu.Lock()
	if len(c.tiles) >= maxCachedTiles {
		n := 0
		for k := range c.tiles { // drop about half, in map order
			if n%2 == 0 {
				delete(c.tiles, k)
			}
			n++
		}
	}
	if id.width != 0 {
		// Only the widest partial version of a tile is worth keeping.
		for w := uint8(1); w < id.width; w++ {
			delete(c.tiles, tileID{id.level, id.index, w})
		}
	}
	c.tiles[id] = t
	c.mu.Unlock()
	return t, nil
}

// node returns the hash of a perfect subtree node of the tree of size.
func (c *proofCache) node(ctx context.Context, size uint64, n compact.NodeID) ([]byte, error) {
	tl, ti, nl, ni := layout.NodeCoordsToTileAddress(uint64(n.Level), n.Index)
	t, err := c.tile(ctx, tileID{tl, ti, layout.PartialTileSize(tl, ti, size)})
	if err != nil {
		return nil, err
	}
	if int(nl) >= len(t.levels) || ni >= uint64(len(t.levels[nl])) {
		return nil, fmt.Errorf("node %d/%d is not in tile %d/%d of tree size %d", n.Level, n.Index, tl, ti, size)
	}
	return t.levels[nl][ni], nil
}

func (c *proofCache) build(ctx context.Context, size uint64, nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := c.node(ctx, size, id)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, merklehash.Default.HashChildren)
}

// inclusion returns the RFC 9162 audit path of index in the tree of size.
func (c *proofCache) inclusion(ctx context.Context, size, index uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, size, err)
	}
	p, err := c.build(ctx, size, nodes)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, size, err)
	}
	return p, nil
}

// consistency returns the RFC 9162 consistency path between two sizes.
func (c *proofCache) consistency(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d→%d: %w", size1, size2, err)
	}
	p, err := c.build(ctx, size2, nodes)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d→%d: %w", size1, size2, err)
	}
	return p, nil
}
