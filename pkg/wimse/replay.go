package wimse

import (
	"container/heap"
	"fmt"
	"sync"
	"time"
)

// MaxJTILen bounds the length of a jti kept in a ReplayCache.
const MaxJTILen = 256

// Replayer records one-time token ids (jti): UseFor returns an error
// wrapping [ErrReplay] for an id already used and unexpired, [ErrReplayQuota]
// when owner holds too many, [ErrReplayCacheFull] or [ErrReplayUnavailable]
// when it cannot record it (the caller refuses the token: fail closed).
// [ReplayCache] keeps them in memory; a replicated service shares one
// through its database (storage/aws.Replay) so that a token used on one
// replica is refused by every other.
type Replayer interface {
	UseFor(owner, id string, expires, now time.Time) error
}

// Layered checks shared first (the replicas' common record of used ids),
// then local (this process's cache, which also applies the per-owner
// limit). An id the shared store refuses or cannot record is not put in
// local, so a client may retry once the shared store is back.
func Layered(shared Replayer, local *ReplayCache) Replayer {
	return layered{shared: shared, local: local}
}

type layered struct {
	shared Replayer
	local  *ReplayCache
}

func (l layered) UseFor(owner, id string, expires, now time.Time) error {
	if id == "" || len(id) > MaxJTILen {
		return fmt.Errorf("%w: jti must be 1 to %d bytes", ErrMalformed, MaxJTILen)
	}
	if owner != "" && l.local.overQuota(owner, now) {
		return l.local.UseFor(owner, id, expires, now) // names the quota
	}
	if err := l.shared.UseFor(owner, id, expires, now); err != nil {
		return err
	}
	return l.local.UseFor(owner, id, expires, now)
}

// ReplayCache remembers token ids (jti) until they expire, with bounded memory:
// at most Capacity live entries. Expired entries are dropped first (a min-heap
// on expiry keeps that O(log n)); when every slot holds an unexpired id the
// cache refuses the new one with [ErrReplayCacheFull] instead of forgetting an
// id that could then be replayed. Size it for the expected rate times the
// longest token lifetime. It is safe for concurrent use.
type ReplayCache struct {
	mu         sync.Mutex
	capacity   int
	ownerLimit int
	seen       map[string]time.Time
	owners     map[string]int // unexpired ids per owner
	order      expiryHeap
}

// DefaultProofsPerCaller is the per-caller share of a registration WPT
// replay cache used by `trustfabric serve` (see [WithOwnerLimit]): with the
// default one-minute proofs, about 160 registrations a second from one
// workload identity.
const DefaultProofsPerCaller = 10000

// ReplayOption configures a ReplayCache.
type ReplayOption func(*ReplayCache)

// WithOwnerLimit bounds the unexpired ids one owner (for WPTs, the WIT
// subject) may hold, so that one authenticated caller cannot fill the cache
// and have everyone else's tokens refused; beyond it [ReplayCache.UseFor]
// refuses with [ErrReplayQuota]. Default: no per-owner limit.
func WithOwnerLimit(n int) ReplayOption {
	return func(c *ReplayCache) { c.ownerLimit = max(n, 0) }
}

// NewReplayCache returns a cache holding at most capacity unexpired ids
// (minimum 1).
func NewReplayCache(capacity int, opts ...ReplayOption) *ReplayCache {
	c := &ReplayCache{capacity: max(capacity, 1), seen: map[string]time.Time{}, owners: map[string]int{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Use records id as used until expires. It returns an error wrapping
// [ErrReplay] when id is already recorded and unexpired at now,
// [ErrReplayCacheFull] when the cache is full, or [ErrMalformed] for an empty
// or oversize id.
func (c *ReplayCache) Use(id string, expires, now time.Time) error {
	return c.UseFor("", id, expires, now)
}

// UseFor is Use on behalf of owner: with [WithOwnerLimit], an owner holding
// its limit of unexpired ids is refused with [ErrReplayQuota]. The empty
// owner is not limited.
func (c *ReplayCache) UseFor(owner, id string, expires, now time.Time) error {
	if id == "" || len(id) > MaxJTILen {
		return fmt.Errorf("%w: jti must be 1 to %d bytes", ErrMalformed, MaxJTILen)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if exp, ok := c.seen[id]; ok && exp.After(now) {
		return fmt.Errorf("%w: jti was already used", ErrReplay)
	}
	if owner != "" && c.ownerLimit > 0 && c.owners[owner] >= c.ownerLimit {
		return fmt.Errorf("%w: %d unexpired proofs; wait for them to expire", ErrReplayQuota, c.owners[owner])
	}
	if len(c.seen) >= c.capacity {
		return fmt.Errorf("%w: %d unexpired ids", ErrReplayCacheFull, len(c.seen))
	}
	c.seen[id] = expires
	if owner != "" {
		c.owners[owner]++
	}
	heap.Push(&c.order, expiryEntry{id: id, owner: owner, exp: expires})
	return nil
}

// overQuota reports whether owner already holds its limit of unexpired ids.
func (c *ReplayCache) overQuota(owner string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	return c.ownerLimit > 0 && c.owners[owner] >= c.ownerLimit
}

// expire drops the ids expired at now; c.mu is held.
func (c *ReplayCache) expire(now time.Time) {
	for c.order.Len() > 0 && !c.order[0].exp.After(now) {
		e := heap.Pop(&c.order).(expiryEntry)
		if c.seen[e.id].Equal(e.exp) {
			delete(c.seen, e.id)
			if e.owner != "" {
				if c.owners[e.owner]--; c.owners[e.owner] <= 0 {
					delete(c.owners, e.owner)
				}
			}
		}
	}
}

// Len returns the number of ids currently remembered.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiryEntry struct {
	id, owner string
	exp       time.Time
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
