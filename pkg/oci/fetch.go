package oci

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// FetchContent reads the statement and preimage layers of entries listed by
// Discover (without WithContent) from repository, concurrently, each
// manifest and blob at most once, with the size and digest checks of
// Discover. Each entry's Err is set when it cannot be read. It lets a
// verifier hold the blobs of a few referrers at a time instead of all of
// them.
//
// With [WithBlobCache] the blobs are taken from (and fetched into) a cache
// shared by several calls, so a caller fetching in groups fetches each blob
// once, within the cache's byte budget; an entry that would exceed it gets an
// Err wrapping [ErrBudgetExceeded].
func (c *Client) FetchContent(ctx context.Context, repository string, entries []Entry, opts ...FetchOption) error {
	var o fetchOptions
	for _, opt := range opts {
		opt(&o)
	}
	r, err := name.NewRepository(repository, c.nameOpts(repository)...)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadReference, repository, err)
	}
	rc, err := c.repository(ctx, r, false)
	if err != nil {
		return err
	}
	cache := o.cache
	if cache == nil {
		cache = NewBlobCache(0)
	}
	sem := make(chan struct{}, c.jobs)
	var wg sync.WaitGroup
	for i := range entries {
		e := &entries[i]
		if e.Err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			e.Err = c.fetchEntry(ctx, rc, e, true, cache)
		}()
	}
	wg.Wait()
	return nil
}

// FetchOption configures [Client.FetchContent].
type FetchOption func(*fetchOptions)

type fetchOptions struct{ cache *BlobCache }

// WithBlobCache fetches through c (shared across calls, with its byte budget).
// Default: a cache for this call only, without a budget.
func WithBlobCache(c *BlobCache) FetchOption { return func(o *fetchOptions) { o.cache = c } }
