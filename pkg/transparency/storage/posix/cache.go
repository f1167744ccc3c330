package posix

import "github.com/trustfabric/trustfabric/pkg/transparency/storage"

// recentEntries is the size of one generation of the cache of recently
// written entries (two generations: at most 2 × 8192 entries, ≈ 2 MB).
const recentEntries = 8192

// metaCache is a bounded two-generation cache of what the store wrote
// last, with the index slot it is in: a registration reads its entry back
// right after storing it and then indexes it, which then costs no pread. It
// is changed only under the store's write lock and read under its read lock.
type metaCache struct {
	max       int
	cur, prev map[storage.Entry]cached
}

// cached is a cache entry: the meta, and its slot in the index while the
// index's table is generation gen.
type cached struct {
	meta
	slot uint64
	gen  uint32
}

// staleSlot is a generation no table has: the slot is unknown.
const staleSlot = ^uint32(0)

func newMetaCache(max int) *metaCache {
	return &metaCache{max: max, cur: make(map[storage.Entry]cached, max)}
}

func (c *metaCache) get(e storage.Entry) (cached, bool) {
	if m, ok := c.cur[e]; ok {
		return m, true
	}
	m, ok := c.prev[e]
	return m, ok
}

func (c *metaCache) put(e storage.Entry, m cached) {
	if _, ok := c.cur[e]; !ok && len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[storage.Entry]cached, c.max)
	}
	c.cur[e] = m
}
