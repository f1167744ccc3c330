// Storing a registration and appending it to the log: the operation a
// registration in flight shares with its waiters, and the append retries.

package transparency

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

// operation is a registration being stored and appended.
type operation struct {
	stored   chan struct{} // closed once the statement is durable (or failed)
	storeErr error
	done     chan struct{}  // closed once the entry has an index (or failed)
	rec      storage.Record // what Put returned; set before stored is closed
	index    uint64
	err      error

	// appendErr is the error of the last failed log append while the
	// service retries it (nil once an attempt succeeded).
	appendErr atomic.Pointer[error]
}

// wait waits for the operation's append. ok: rec is the indexed record.
// Otherwise err is ctx's error when ctx ended first, nil when the operation
// failed (the caller then asks the store).
func (op *operation) wait(ctx context.Context) (rec storage.Record, ok bool, err error) {
	select {
	case <-op.done:
	case <-ctx.Done():
		return storage.Record{}, false, ctx.Err()
	}
	if op.storeErr != nil || op.err != nil {
		return storage.Record{}, false, nil
	}
	rec = op.rec
	rec.Index, rec.Indexed = op.index, true
	return rec, true, nil
}

// failing returns the error of the last failed append attempt, or nil.
func (op *operation) failing() error {
	if p := op.appendErr.Load(); p != nil {
		return *p
	}
	return nil
}

// startAppend stores the statement, then appends it in the background.
// Storing completes even if the client goes away, so that the store and the
// log never disagree for long.
func (s *Service) startAppend(rctx context.Context, op *operation, entry storage.Entry, registered []byte) {
	ctx := context.WithoutCancel(rctx)
	finish := func(idx uint64, err error) {
		op.index, op.err = idx, err
		s.mu.Lock()
		delete(s.inflight, entry)
		s.mu.Unlock()
		close(op.done)
	}
	// Bound the registrations waiting for the log (back-pressure on POST).
	select {
	case s.appendSlots <- struct{}{}:
	case <-rctx.Done():
		op.storeErr = fmt.Errorf("%w: too many registrations waiting for the log", ErrOverloaded)
		close(op.stored)
		finish(0, op.storeErr)
		return
	}
	rec, _, err := s.store.Put(ctx, entry, registered, time.Now())
	if err != nil {
		<-s.appendSlots
		op.storeErr = fmt.Errorf("store statement: %w", err)
		if errors.Is(err, storage.ErrNoSpace) {
			op.storeErr = fmt.Errorf("%w: %w", ErrStorageFull, op.storeErr)
		}
		close(op.stored)
		finish(0, op.storeErr)
		return
	}
	op.rec = rec
	op.rec.Entry = entry
	close(op.stored)
	if rec.Indexed {
		<-s.appendSlots
		finish(rec.Index, nil)
		return
	}
	s.appenders.Go(func() {
		defer func() { <-s.appendSlots }()
		finish(s.appendEntry(ctx, entry, op))
	})
}

// appendEntry appends a stored entry to the log, retrying while the log
// pushes back, and records its index. With an operation (a registration
// being served), every other failure is retried too, with backoff, until an
// attempt succeeds or the service closes: the statement is durable and its
// registration was acknowledged, so it must reach the log; meanwhile the
// operation reports the failure (ErrAppendFailing). Without one (recovery at
// start-up) such a failure is returned.
func (s *Service) appendEntry(ctx context.Context, entry storage.Entry, op *operation) (uint64, error) {
	wait := 10 * time.Millisecond
	failures := 0
	for {
		idx, err := s.log.Append(ctx, entry)
		if err == nil {
			if err = s.store.SetIndex(ctx, entry, idx); err == nil {
				if op != nil {
					op.appendErr.Store(nil)
				}
				if failures > 0 {
					s.logger.InfoContext(ctx, "append to log succeeded after failures",
						slog.String("entry", hex.EncodeToString(entry[:])), slog.Int("failures", failures), slog.Uint64("index", idx))
				}
				return idx, nil
			}
			// The entry is in the log: retry recording its index (appending
			// again would add a second leaf); if the service stops first,
			// recovery at the next start finds it in the log.
			for op != nil && !s.closing.Load() {
				failures++
				s.appendFailed(ctx, op, entry, failures, "recording the log index failed; retrying", fmt.Errorf("record index %d: %w", idx, err))
				time.Sleep(wait)
				wait = min(2*wait, time.Second)
				if err = s.store.SetIndex(ctx, entry, idx); err == nil {
					op.appendErr.Store(nil)
					return idx, nil
				}
			}
			return 0, fmt.Errorf("record index %d: %w", idx, err)
		}
		if s.closing.Load() {
			return 0, err
		}
		if !errors.Is(err, posix.ErrPushback) {
			if op == nil {
				return 0, err
			}
			failures++
			s.appendFailed(ctx, op, entry, failures, "append to log failed; retrying", err)
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// appendFailed reports the failures-th failure of an append (or of
// recording its index) to the operation, which GET answers with it, and
// logs the first and every hundredth.
func (s *Service) appendFailed(ctx context.Context, op *operation, entry storage.Entry, failures int, msg string, err error) {
	op.appendErr.Store(&err)
	if failures == 1 || failures%100 == 0 {
		s.logger.ErrorContext(ctx, msg,
			slog.String("entry", hex.EncodeToString(entry[:])), slog.Int("failures", failures), slog.Any("error", err))
	}
}
