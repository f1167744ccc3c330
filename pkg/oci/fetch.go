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
func (c *Client) FetchContent(ctx context.Context, repository string, entries []Entry) error {
	r, err := name.NewRepository(repository, c.nameOpts(repository)...)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadReference, repository, err)
	}
	rc, err := c.repository(ctx, r, false)
	if err != nil {
		return err
	}
	cache := &blobCache{m: map[string]*blobCall{}}
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
