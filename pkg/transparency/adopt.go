package transparency

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// dedup reports whether appending an entry twice is harmless (the log
// returns its existing index; storage.Deduplicator).
func (s *Service) dedup() bool {
	d, ok := s.log.(storage.Deduplicator)
	return ok && d.Deduplicates()
}

// adoptLoop appends, every AdoptInterval, the registrations that are stored
// but have no index and are not being appended by this process: those of a
// replica that stopped (or died) before appending them. The log's
// deduplication makes this safe while the other replica is still alive.
func (s *Service) adoptLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.AdoptInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pending, err := s.store.Unindexed(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.WarnContext(ctx, "listing pending registrations failed", slog.Any("error", err))
			}
			continue
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 256)
		adopted := 0
		for _, e := range pending {
			s.mu.Lock()
			_, mine := s.inflight[e]
			s.mu.Unlock()
			if mine {
				continue
			}
			adopted++
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := s.adopt(ctx, e); err != nil && ctx.Err() == nil {
					s.logger.WarnContext(ctx, "adopting a pending registration failed; retrying later",
						slog.String("entry", hex.EncodeToString(e[:])), slog.Any("error", err))
				}
			})
		}
		wg.Wait()
		if adopted > 0 {
			s.logger.InfoContext(ctx, "adopted pending registrations", slog.Int("entries", adopted))
		}
	}
}

// adopt appends a registration another replica left pending. With a log
// that knows who is appending what (storage.Adopter), entries a live
// replica is still appending are skipped: waiting on them would put every
// registration of every other replica through this one too.
func (s *Service) adopt(ctx context.Context, e storage.Entry) error {
	a, ok := s.log.(storage.Adopter)
	if !ok {
		_, err := s.appendEntry(ctx, e, nil)
		return err
	}
	idx, ok, err := a.AppendUnclaimed(ctx, e)
	if err != nil || !ok {
		return err
	}
	return s.store.SetIndex(ctx, e, idx)
}

// recover resolves statements that were stored but have no index: they are
// looked up in the log (newest bundles first) or appended again. On a
// deduplicating log they are simply appended again.
func (s *Service) recover(ctx context.Context) error {
	pending, err := s.store.Unindexed(ctx)
	if err != nil || len(pending) == 0 {
		return err
	}
	want := make(map[storage.Entry]bool, len(pending))
	for _, e := range pending {
		want[e] = true
	}
	if s.dedup() {
		return s.reappend(ctx, want, 0)
	}
	size, err := s.log.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("recover: log size: %w", err)
	}
	found := 0
	for b := (size + layout.EntryBundleWidth - 1) / layout.EntryBundleWidth; b > 0 && len(want) > 0; b-- {
		idx := b - 1
		raw, err := s.log.ReadEntryBundle(ctx, idx, layout.PartialTileSize(0, idx, size))
		if err != nil {
			return fmt.Errorf("recover: read entry bundle %d: %w", idx, err)
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(raw); err != nil {
			return fmt.Errorf("recover: parse entry bundle %d: %w", idx, err)
		}
		for i, data := range eb.Entries {
			var e storage.Entry
			if len(data) != len(e) {
				continue
			}
			copy(e[:], data)
			if want[e] {
				delete(want, e)
				found++
				if err := s.store.SetIndex(ctx, e, idx*layout.EntryBundleWidth+uint64(i)); err != nil {
					return fmt.Errorf("recover: %w", err)
				}
			}
		}
	}
	return s.reappend(ctx, want, found)
}

// reappend appends the entries of want concurrently, so that Tessera
// batches them.
func (s *Service) reappend(ctx context.Context, want map[storage.Entry]bool, found int) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 1024)
	for e := range want {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := s.appendEntry(ctx, e, nil)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("recover: re-append %x: %w", e[:], err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "recovered pending registrations", slog.Int("found_in_log", found), slog.Int("appended", len(want)))
	return nil
}
