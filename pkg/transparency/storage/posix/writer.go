package posix

import (
	"context"
	"fmt"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

type writeReq struct {
	buf  []byte
	sync bool
	done chan error
}

// writer performs group commits until quit is closed and the queue is drained.
func (s *statementFile) writer() {
	defer s.wg.Done()
	var batch []writeReq
	for {
		var first writeReq
		select {
		case first = <-s.queue:
		case <-s.quit:
			// Drain what is left, then stop.
			batch = batch[:0]
			for {
				select {
				case r := <-s.queue:
					batch = append(batch, r)
				default:
					if len(batch) > 0 {
						s.commit(batch)
					}
					return
				}
			}
		}
		batch = append(batch[:0], first)
	more:
		for len(batch) < 4096 {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

func (s *statementFile) commit(batch []writeReq) {
	var size int
	needSync := false
	for _, r := range batch {
		size += len(r.buf)
		needSync = needSync || r.sync
	}
	buf := make([]byte, 0, size)
	for _, r := range batch {
		buf = append(buf, r.buf...)
	}
	// Room in the index first: a full disk then fails this commit before
	// anything is written, not the index update after it. Only this
	// goroutine changes the index, so it is read under the read lock and
	// lookups go on while a bigger table is built.
	s.mu.RLock()
	start, failed := s.end, s.failed
	for failed == nil && s.idx.needsGrow(uint64(len(batch))) {
		g, err := s.idx.build()
		s.mu.RUnlock()
		if err == nil {
			s.mu.Lock()
			err = s.idx.install(g)
			s.mu.Unlock()
		}
		s.mu.RLock()
		if err != nil {
			failed = fmt.Errorf("statement store %s: %w", s.path, err)
		}
	}
	s.mu.RUnlock()
	if failed != nil {
		for _, r := range batch {
			r.done <- failed
		}
		return
	}
	_, err := s.f.WriteAt(buf, start)
	if err == nil && needSync {
		err = s.f.Sync()
	}
	if err != nil {
		err = noSpace(fmt.Errorf("write statement store: %w", err))
		// Undo the partial write: left in place, a shorter later batch would
		// leave part of it after the last record, which reads as damage at
		// the next start. If it cannot be undone, refuse every later write.
		if terr := s.f.Truncate(start); terr != nil {
			s.mu.Lock()
			s.failed = fmt.Errorf("statement store %s: a failed write could not be undone (%w); restart the service: %w",
				s.path, terr, err)
			s.mu.Unlock()
		}
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	s.mu.Lock()
	off := start
	var ierr error
	for _, r := range batch {
		if err := s.apply(r.buf[frameHeader:], off+frameHeader); err != nil && ierr == nil {
			// The records are durable but the index missed one: refuse
			// every later write; the index is rebuilt at the next start.
			ierr = fmt.Errorf("statement store %s: updating the entry index failed (%w); restart the service", s.path, err)
			s.failed = ierr
		}
		off += int64(len(r.buf))
	}
	s.end = off
	s.mu.Unlock()
	for _, r := range batch {
		r.done <- ierr
	}
}

// submit queues one record: rec is its frame, the payload after
// frameHeader bytes that submit fills in (no copy of the statement).
func (s *statementFile) submit(ctx context.Context, rec []byte, sync bool) error {
	setFrameHeader(rec)
	req := writeReq{buf: rec, sync: sync, done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return storage.ErrClosed
	}
	select {
	case s.queue <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued the write happens; wait for it even if ctx ends so that the
	// caller's view (an error) never contradicts a durable record for long.
	return <-req.done
}
