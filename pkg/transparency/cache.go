package transparency

import "sync"

// receiptCache is a bounded two-generation cache of encoded receipts by
// entry: lookups hit either generation; when the current generation is full
// it becomes the previous one and the oldest is dropped.
type receiptCache struct {
	mu        sync.Mutex
	max       int
	cur, prev map[[32]byte][]byte
}

func newReceiptCache(max int) *receiptCache {
	return &receiptCache{max: max, cur: make(map[[32]byte][]byte)}
}

func (c *receiptCache) get(k [32]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v
	}
	return c.prev[k]
}

func (c *receiptCache) put(k [32]byte, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[[32]byte][]byte, c.max)
	}
	c.cur[k] = v
}
