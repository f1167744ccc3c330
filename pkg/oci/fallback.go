package oci

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// tagLock serialises this client's own writers of one tag index; other processes are
// handled by the read-merge-write-confirm loop.
func (c *Client) tagLock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.tagLocks[key]
	if !ok {
		l = &sync.Mutex{}
		c.tagLocks[key] = l
	}
	return l
}

// readTagIndex reads the tag-schema index; a missing tag is an empty index.
func (c *Client) readTagIndex(ctx context.Context, rc *repoClient, tag string) ([]Descriptor, string, error) {
	f, found, err := rc.getManifest(ctx, tag)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, "", fmt.Errorf("%w: referrers tag %s: %w", ErrMalformedIndex, tag, err)
		}
		return nil, "", err
	}
	if !found {
		return nil, "", nil
	}
	if f.mediaType != "" && f.mediaType != IndexMediaType {
		return nil, "", fmt.Errorf("%w: tag %s holds a %s, not an image index; remove it or use a registry with the referrers API",
			ErrMalformedIndex, tag, f.mediaType)
	}
	ix, err := parseIndex(f.body, c.maxEntries)
	if err != nil {
		return nil, "", fmt.Errorf("referrers tag %s: %w", tag, err)
	}
	etag := f.etag
	if etag == "" {
		etag = `"` + f.digest + `"`
	}
	return ix.Manifests, etag, nil
}

// addToTagIndex adds desc to the sha256-<hex> index of subjectDigest, following the
// distribution-spec client rules (no duplicates, artifactType and annotations copied) and
// making concurrent writers safe without registry support for conditional writes:
//
//	read → merge (union of everything seen during this call) → write (If-Match when the
//	registry gave an ETag) → wait a settle period → re-read
//
// and it returns only after two consecutive reads, a settle period apart, list every
// entry it has seen. A writer whose PUT overwrote ours re-read before our write, so after
// the settle period its write has landed and our re-read sees the loss and writes again.
func (c *Client) addToTagIndex(ctx context.Context, rc *repoClient, subjectDigest string, desc Descriptor) error {
	tag := fallbackTag(subjectDigest)
	l := c.tagLock(rc.repo.String() + ":" + tag)
	l.Lock()
	defer l.Unlock()

	union := map[string]Descriptor{desc.Digest: desc}
	order := []string{desc.Digest}
	confirmed := 0
	for attempt := 0; attempt < c.fallbackTries; attempt++ {
		cur, etag, err := c.readTagIndex(ctx, rc, tag)
		if err != nil {
			return err
		}
		present := make(map[string]bool, len(cur))
		for _, d := range cur {
			present[d.Digest] = true
			if _, ok := union[d.Digest]; !ok {
				union[d.Digest] = d
				order = append(order, d.Digest)
			}
		}
		complete := len(present) >= len(union)
		for dig := range union {
			complete = complete && present[dig]
		}
		if complete {
			if confirmed++; confirmed >= 2 {
				return nil
			}
			if err := c.sleep(ctx, c.jitter()); err != nil {
				return err
			}
			continue
		}
		confirmed = 0
		merged := make([]Descriptor, 0, len(union))
		for _, dig := range order {
			merged = append(merged, union[dig])
		}
		sortDescriptors(merged)
		body, err := marshalIndex(merged)
		if err != nil {
			return err
		}
		if int64(len(body)) > c.maxIndex {
			return fmt.Errorf("%w: referrers tag %s would be %d bytes", ErrTooLarge, tag, len(body))
		}
		ifMatch := ""
		if len(cur) > 0 {
			ifMatch = etag
		}
		if _, err := rc.putManifest(ctx, tag, IndexMediaType, body, ifMatch); err != nil && !errors.Is(err, errPreconditionFailed) {
			return fmt.Errorf("write referrers tag %s: %w", tag, err)
		}
		if err := c.sleep(ctx, c.jitter()); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %s after %d attempts", ErrFallbackLost, tag, c.fallbackTries)
}

// jitter returns the settle period plus up to half of it at random.
func (c *Client) jitter() time.Duration {
	if c.settle <= 0 {
		return 0
	}
	return c.settle + rand.N(c.settle/2+1)
}
