package posix

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// The statement store is one append-only file of framed records:
//
//	record  = u32 payload length ‖ u32 CRC-32C(payload) ‖ payload
//	payload = 0x01 ‖ entry(32) ‖ i64 registered (Unix ns) ‖ statement   (put)
//	        | 0x02 ‖ entry(32) ‖ u64 index                              (index)
//
// Writers queue records; one goroutine writes every queued record with one
// write and one fsync (group commit), then releases the writers. At open the
// file is replayed into an in-memory map; a torn or corrupt tail (a crash in
// the middle of a write) is cut off, which loses only records whose writers
// were never released.

const (
	recPut   = 0x01
	recIndex = 0x02

	frameHeader = 8
	putHeader   = 1 + storage.EntrySize + 8
	indexLen    = 1 + storage.EntrySize + 8

	// MaxStatementSize bounds one stored statement (and so one record).
	MaxStatementSize = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type meta struct {
	off        int64 // file offset of the statement bytes
	size       int32
	registered int64
	index      uint64 // index+1; 0 = not indexed
}

type writeReq struct {
	buf  []byte
	sync bool
	done chan error
}

// statementFile implements storage.Statements on a local file.
type statementFile struct {
	f *os.File

	mu     sync.RWMutex
	m      map[storage.Entry]meta
	end    int64 // offset of the next record
	closed bool  // guarded by closeMu

	// closeMu orders Close against submitters so that nothing is queued
	// after the writer stopped.
	closeMu sync.RWMutex

	queue chan writeReq
	quit  chan struct{}
	wg    sync.WaitGroup
}

// OpenStatements opens (creating it if needed) the statement store file at
// path and replays it.
func OpenStatements(path string) (storage.Statements, error) {
	return openStatements(path)
}

func openStatements(path string) (*statementFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open statement store: %w", err)
	}
	s := &statementFile{f: f, m: make(map[storage.Entry]meta), queue: make(chan writeReq, 4096), quit: make(chan struct{})}
	if err := s.replay(); err != nil {
		f.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

func (s *statementFile) replay() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat statement store: %w", err)
	}
	r := io.NewSectionReader(s.f, 0, st.Size())
	var off int64
	hdr := make([]byte, frameHeader)
	buf := make([]byte, 0, 4096)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			break // clean end or torn header
		}
		n := binary.BigEndian.Uint32(hdr)
		sum := binary.BigEndian.Uint32(hdr[4:])
		if n < indexLen || n > putHeader+MaxStatementSize {
			break
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			break
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			break
		}
		if err := s.apply(buf, off+frameHeader); err != nil {
			break
		}
		off += frameHeader + int64(n)
	}
	if off != st.Size() {
		// Cut the torn tail so that new records follow the last good one.
		if err := s.f.Truncate(off); err != nil {
			return fmt.Errorf("truncate torn statement store tail: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("sync statement store: %w", err)
		}
	}
	s.end = off
	return nil
}

// apply updates the map from one record payload found at payloadOff.
func (s *statementFile) apply(p []byte, payloadOff int64) error {
	var e storage.Entry
	switch {
	case p[0] == recPut && len(p) >= putHeader:
		copy(e[:], p[1:])
		if _, ok := s.m[e]; ok {
			return nil // first record wins
		}
		s.m[e] = meta{
			off:        payloadOff + putHeader,
			size:       int32(len(p) - putHeader),
			registered: int64(binary.BigEndian.Uint64(p[1+storage.EntrySize:])),
		}
	case p[0] == recIndex && len(p) == indexLen:
		copy(e[:], p[1:])
		m, ok := s.m[e]
		if !ok {
			return errors.New("index record for unknown entry")
		}
		if m.index == 0 {
			m.index = binary.BigEndian.Uint64(p[1+storage.EntrySize:]) + 1
			s.m[e] = m
		}
	default:
		return errors.New("unknown record type")
	}
	return nil
}

func frame(payload []byte) []byte {
	b := make([]byte, frameHeader+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
	copy(b[frameHeader:], payload)
	return b
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
	s.mu.Lock()
	start := s.end
	s.mu.Unlock()
	_, err := s.f.WriteAt(buf, start)
	if err == nil && needSync {
		err = s.f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("write statement store: %w", err)
		// Leave s.end where it was: the next commit overwrites the partial write.
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	s.mu.Lock()
	off := start
	for _, r := range batch {
		_ = s.apply(r.buf[frameHeader:], off+frameHeader)
		off += int64(len(r.buf))
	}
	s.end = off
	s.mu.Unlock()
	for _, r := range batch {
		r.done <- nil
	}
}

func (s *statementFile) submit(ctx context.Context, payload []byte, sync bool) error {
	req := writeReq{buf: frame(payload), sync: sync, done: make(chan error, 1)}
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

func (s *statementFile) Put(ctx context.Context, entry storage.Entry, statement []byte, registered time.Time) (storage.Record, bool, error) {
	if len(statement) > MaxStatementSize {
		return storage.Record{}, false, fmt.Errorf("statement of %d bytes exceeds the store limit of %d", len(statement), MaxStatementSize)
	}
	if rec, err := s.Get(ctx, entry); err == nil {
		return rec, false, nil
	}
	p := make([]byte, putHeader+len(statement))
	p[0] = recPut
	copy(p[1:], entry[:])
	binary.BigEndian.PutUint64(p[1+storage.EntrySize:], uint64(registered.UnixNano()))
	copy(p[putHeader:], statement)
	if err := s.submit(ctx, p, true); err != nil {
		return storage.Record{}, false, err
	}
	rec, err := s.Get(ctx, entry)
	if err != nil {
		return storage.Record{}, false, err
	}
	// A concurrent Put of the same entry may have won; only the winner's
	// registration time is kept.
	return rec, rec.Registered.Equal(time.Unix(0, registered.UnixNano())), nil
}

func (s *statementFile) Get(_ context.Context, entry storage.Entry) (storage.Record, error) {
	s.mu.RLock()
	m, ok := s.m[entry]
	s.mu.RUnlock()
	if !ok {
		return storage.Record{}, fmt.Errorf("%x: %w", entry[:], storage.ErrNotFound)
	}
	return toRecord(entry, m), nil
}

func toRecord(e storage.Entry, m meta) storage.Record {
	r := storage.Record{Entry: e, Registered: time.Unix(0, m.registered), Size: int(m.size)}
	if m.index != 0 {
		r.Index, r.Indexed = m.index-1, true
	}
	return r
}

func (s *statementFile) Statement(_ context.Context, entry storage.Entry) ([]byte, error) {
	s.mu.RLock()
	m, ok := s.m[entry]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%x: %w", entry[:], storage.ErrNotFound)
	}
	b := make([]byte, m.size)
	if _, err := s.f.ReadAt(b, m.off); err != nil {
		return nil, fmt.Errorf("read statement: %w", err)
	}
	return b, nil
}

func (s *statementFile) SetIndex(ctx context.Context, entry storage.Entry, index uint64) error {
	rec, err := s.Get(ctx, entry)
	if err != nil {
		return err
	}
	if rec.Indexed {
		if rec.Index != index {
			return fmt.Errorf("entry %x already at index %d, not %d", entry[:], rec.Index, index)
		}
		return nil
	}
	p := make([]byte, indexLen)
	p[0] = recIndex
	copy(p[1:], entry[:])
	binary.BigEndian.PutUint64(p[1+storage.EntrySize:], index)
	// Index records are derived data (the log holds the truth), so they ride
	// along with the next group commit's fsync instead of forcing one.
	return s.submit(ctx, p, false)
}

func (s *statementFile) Unindexed(context.Context) ([]storage.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []storage.Entry
	for e, m := range s.m {
		if m.index == 0 {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *statementFile) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.quit)
	s.wg.Wait()
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}
