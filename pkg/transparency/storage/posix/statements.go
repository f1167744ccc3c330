package posix

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// The statement store is one append-only file of framed records:
//
//	record  = u32 payload length ‖ u32 CRC-32C(payload) ‖ payload
//	payload = 0x01 ‖ entry(32) ‖ i64 registered (Unix ns) ‖ statement   (put)
//	        | 0x02 ‖ entry(32) ‖ u64 index                              (index)
//	        | 0x03 ‖ entry(32) ‖ u64 index                              (lost)
//
// Writers queue records; one goroutine writes every queued record with one
// write and one fsync (group commit), then releases the writers. A lost
// record is written only by Repair: the log holds the entry at index but its
// statement could not be recovered.
//
// What the store knows of each entry (where its statement is, its
// registration time and log index) is kept in the entry index, a file next
// to the store (index.go), with a bounded cache of the entries written last:
// memory does not grow with the store. At open every record is checked; when
// the index was not closed cleanly together with this very file it is
// rebuilt from the records. A damaged record is handled by where it is (docs/design/transparency.md, "Durability and
// corruption"):
//   - a torn tail (the last record is incomplete: its header or its bytes run
//     past the end of the file, or its length is impossible, and no intact
//     record follows) is what a crash in the middle of a group commit leaves;
//     its writers were never released, so it is cut off (and logged);
//   - anything else (a checksum mismatch in a complete record, a damaged
//     record followed by intact ones, an impossible record content) refuses to
//     open with a [*CorruptError] naming the file and byte offset.

const (
	recPut   = 0x01
	recIndex = 0x02
	recLost  = 0x03

	frameHeader = 8
	putHeader   = 1 + storage.EntrySize + 8
	indexLen    = 1 + storage.EntrySize + 8

	// MaxStatementSize bounds one stored statement (and so one record).
	MaxStatementSize = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports a damaged record in the statement store. It wraps
// [storage.ErrCorrupt].
type CorruptError struct {
	// Path is the statement store file.
	Path string
	// Offset is the byte offset of the damaged record.
	Offset int64
	// Reason says what is wrong with it.
	Reason string
	// Next is the byte offset of the next intact record, or -1 if none
	// follows.
	Next int64
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("statement store %s: damaged record at byte offset %d: %s", e.Path, e.Offset, e.Reason)
	if e.Next >= 0 {
		msg += fmt.Sprintf(" (intact records follow from byte offset %d)", e.Next)
	}
	return msg
}

func (e *CorruptError) Unwrap() error { return storage.ErrCorrupt }

type meta struct {
	off        int64 // file offset of the statement bytes
	size       int32
	registered int64
	index      uint64 // index+1; 0 = not indexed
	lost       bool   // the log holds the entry, the statement is lost
}

// storeFile is what the statement store needs of its file; *os.File
// implements it, tests inject faults (dropped unsynced writes, a full disk).
type storeFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// statementFile implements storage.Statements on a local file.
type statementFile struct {
	path   string
	f      storeFile
	logger *slog.Logger

	// mu guards idx, recent, end and failed. Lookups take it for reading
	// (pread on the index), every change for writing.
	mu     sync.RWMutex
	idx    *indexFile
	recent *metaCache
	end    int64 // offset of the next record
	failed error // sticky: a failed write could not be undone
	closed bool  // guarded by closeMu

	// closeMu orders Close against submitters so that nothing is queued
	// after the writer stopped.
	closeMu sync.RWMutex

	queue   chan writeReq
	quit    chan struct{}
	wg      sync.WaitGroup
	onClose func() error
}

// Option configures [OpenStatements].
type Option func(*options) error

type options struct {
	logger *slog.Logger
}

// WithLogger sets the logger that receives the rare events of the store (a
// torn tail cut at open). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.logger = l
		return nil
	}
}

// OpenStatements opens (creating it if needed) the statement store file at
// path and replays it. A damaged store returns an error wrapping
// [storage.ErrCorrupt] (a [*CorruptError]).
func OpenStatements(path string, opts ...Option) (storage.Statements, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("open statement store: %w", err)
		}
	}
	return openStatements(path, o)
}

func openStatements(path string, o options) (*statementFile, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open statement store: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// Make the new file's name durable before any record in it is.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("open statement store: %w", err)
		}
	}
	s, err := newStatementFile(path, f, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// newStatementFile replays f and starts the writer.
func newStatementFile(path string, f storeFile, o options) (*statementFile, error) {
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	s := &statementFile{path: path, f: f, logger: o.logger, recent: newMetaCache(recentEntries),
		queue: make(chan writeReq, 4096), quit: make(chan struct{})}
	if err := s.replay(); err != nil {
		if s.idx != nil {
			_ = s.idx.close(0, 0, false) // the replay error is the one to report
		}
		return nil, err
	}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *statementFile) replay() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat statement store: %w", err)
	}
	size := st.Size()
	tail, err := storeTailCRC(s.f, size)
	if err != nil {
		return err
	}
	idx, trusted, err := openIndex(s.path+".index", size, tail)
	if err != nil {
		return err
	}
	s.idx = idx
	if trusted {
		if err := idx.verify(); err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				return err
			}
			s.logger.Warn("statement store: the entry index is damaged; rebuilding it", slog.String("error", err.Error()))
			if trusted, err = false, s.resetIndex(); err != nil {
				return err
			}
		}
	}
	for {
		end, cut, err := s.scan(size, !trusted)
		if err != nil {
			return err
		}
		if cut && trusted {
			// The store changed under a clean index (it cannot after a
			// clean close): rebuild the index after all.
			if err := s.resetIndex(); err != nil {
				return err
			}
			trusted, size = false, end
			continue
		}
		s.end = end
		if !trusted {
			s.logger.Info("statement store: entry index rebuilt", slog.String("file", s.idx.path),
				slog.Uint64("entries", s.idx.hdr.count))
		}
		return nil
	}
}

// resetIndex replaces the index by an empty one (to be rebuilt).
func (s *statementFile) resetIndex() error {
	if err := s.idx.close(0, 0, false); err != nil {
		return err
	}
	idx, _, err := openIndex(s.path+".index", -1, 0)
	s.idx = idx
	return err
}

// scan checks every record of the store (the first size bytes) and, when
// rebuild is set, applies it to the index. A torn tail is cut (cut true);
// end is where the next record goes.
func (s *statementFile) scan(size int64, rebuild bool) (end int64, cut bool, err error) {
	var off int64
	var buf []byte
	for off < size {
		p, bad, err := readFrame(s.f, off, size, &buf)
		if err != nil {
			return 0, false, err
		}
		if bad == nil {
			if rebuild {
				if err := s.apply(p, off+frameHeader); err != nil {
					var re recordError
					if errors.As(err, &re) {
						return 0, false, &CorruptError{Path: s.path, Offset: off, Reason: err.Error(), Next: -1}
					}
					return 0, false, err
				}
			}
			off += frameHeader + int64(len(p))
			continue
		}
		next, err := nextFrame(s.f, off+1, size)
		if err != nil {
			return 0, false, err
		}
		if next >= 0 || bad.complete {
			return 0, false, &CorruptError{Path: s.path, Offset: off, Reason: bad.reason, Next: next}
		}
		// A torn tail: the last record's write was cut short by a crash;
		// its writers were never released. Cut it so that new records
		// follow the last intact one.
		s.logger.Warn("statement store: cutting a torn tail left by a crash", slog.String("file", s.path),
			slog.Int64("offset", off), slog.Int64("bytes", size-off), slog.String("reason", bad.reason))
		if err := s.f.Truncate(off); err != nil {
			return 0, false, fmt.Errorf("truncate torn statement store tail: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return 0, false, fmt.Errorf("sync statement store: %w", err)
		}
		return off, true, nil
	}
	return off, false, nil
}

// recordError is a record whose content contradicts the records before it.
type recordError string

func (e recordError) Error() string { return string(e) }

// lookup returns what the store knows of e: from the cache of recent
// entries, else from the index. The caller holds s.mu.
func (s *statementFile) lookup(e storage.Entry) (meta, bool, error) {
	if c, ok := s.recent.get(e); ok {
		return c.meta, true, nil
	}
	m, _, found, err := s.idx.lookup(e)
	if errors.Is(err, errFull) {
		err = nil
	}
	return m, found, err
}

// apply updates the index from one record payload found at payloadOff. The
// caller holds s.mu for writing (or has the store to itself).
func (s *statementFile) apply(p []byte, payloadOff int64) error {
	var e storage.Entry
	copy(e[:], p[1:])
	// Where e is (or would go) in the index: known from the cache when e
	// was written since the table last grew.
	c, ok := s.recent.get(e)
	if !ok || c.gen != s.idx.gen {
		m, slot, found, err := s.idx.lookup(e)
		switch {
		case errors.Is(err, errFull):
			// Not in the table (the probe found neither it nor a free
			// slot): put grows the table.
			c = cached{gen: staleSlot}
		case err != nil:
			return err
		default:
			c = cached{meta: m, slot: slot, gen: s.idx.gen}
		}
		if ok && !found {
			return fmt.Errorf("%w: entry index %s lost entry %x", storage.ErrCorrupt, s.idx.path, e[:])
		}
		ok = found
	}
	m := c.meta
	switch {
	case p[0] == recPut && len(p) >= putHeader:
		if ok && !m.lost {
			return nil // first record wins
		}
		// A lost entry keeps its log index and gets its bytes back.
		m.off, m.size, m.lost = payloadOff+putHeader, int32(len(p)-putHeader), false
		m.registered = int64(binary.BigEndian.Uint64(p[1+storage.EntrySize:]))
	case p[0] == recIndex && len(p) == indexLen:
		if !ok {
			return recordError("index record for an entry with no statement record before it")
		}
		if m.index != 0 {
			return nil
		}
		m.index = binary.BigEndian.Uint64(p[1+storage.EntrySize:]) + 1
	case p[0] == recLost && len(p) == indexLen:
		if ok {
			return nil
		}
		m = meta{lost: true, index: binary.BigEndian.Uint64(p[1+storage.EntrySize:]) + 1}
	default:
		return recordError(fmt.Sprintf("unknown record type 0x%02x", p[0]))
	}
	if c.gen == s.idx.gen {
		if err := s.idx.store(c.slot, e, m, !ok); err != nil {
			return err
		}
	} else {
		if err := s.idx.put(e, m); err != nil {
			return err
		}
		c.gen = staleSlot
	}
	c.meta = m
	s.recent.put(e, c)
	return nil
}

func (s *statementFile) Put(ctx context.Context, entry storage.Entry, statement []byte, registered time.Time) (storage.Record, bool, error) {
	if len(statement) > MaxStatementSize {
		return storage.Record{}, false, fmt.Errorf("statement of %d bytes exceeds the store limit of %d", len(statement), MaxStatementSize)
	}
	// Only the cache of recent entries is asked first, not the index: for a
	// new entry (the usual case) that would be a read for nothing. An older
	// entry registered again has its record written again, which the index
	// ignores (the first record wins) and Put reports as not created.
	s.mu.RLock()
	c, ok := s.recent.get(entry)
	s.mu.RUnlock()
	if ok && !c.lost {
		return toRecord(entry, c.meta), false, nil
	}
	r := make([]byte, frameHeader+putHeader+len(statement))
	p := r[frameHeader:]
	p[0] = recPut
	copy(p[1:], entry[:])
	binary.BigEndian.PutUint64(p[1+storage.EntrySize:], uint64(registered.UnixNano()))
	copy(p[putHeader:], statement)
	if err := s.submit(ctx, r, true); err != nil {
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
	m, ok, err := s.lookup(entry)
	s.mu.RUnlock()
	if err != nil {
		return storage.Record{}, err
	}
	if !ok {
		return storage.Record{}, storage.NotFound(entry)
	}
	return toRecord(entry, m), nil
}

func toRecord(e storage.Entry, m meta) storage.Record {
	r := storage.Record{Entry: e, Registered: time.Unix(0, m.registered), Size: int(m.size), Lost: m.lost}
	if m.lost {
		r.Registered = time.Time{}
	}
	if m.index != 0 {
		r.Index, r.Indexed = m.index-1, true
	}
	return r
}

func (s *statementFile) Statement(_ context.Context, entry storage.Entry) ([]byte, error) {
	s.mu.RLock()
	m, ok, err := s.lookup(entry)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, storage.NotFound(entry)
	}
	if m.lost {
		return nil, fmt.Errorf("%x (log index %d): %w", entry[:], m.index-1, storage.ErrLost)
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
	r := make([]byte, frameHeader+indexLen)
	p := r[frameHeader:]
	p[0] = recIndex
	copy(p[1:], entry[:])
	binary.BigEndian.PutUint64(p[1+storage.EntrySize:], index)
	// Index records are derived data (the log holds the truth), so they ride
	// along with the next group commit's fsync instead of forcing one.
	return s.submit(ctx, r, false)
}

func (s *statementFile) Unindexed(context.Context) ([]storage.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []storage.Entry
	err := s.idx.each(func(e storage.Entry, m meta) {
		if m.index == 0 {
			out = append(out, e)
		}
	})
	if err != nil {
		return nil, err
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
	// The index vouches for the store only if it saw every record of it.
	clean := err == nil && s.failed == nil
	var tail uint32
	if clean {
		var terr error
		tail, terr = storeTailCRC(s.f, s.end)
		clean = terr == nil
	}
	if ierr := s.idx.close(s.end, tail, clean); err == nil {
		err = ierr
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if s.onClose != nil {
		if cerr := s.onClose(); err == nil {
			err = cerr
		}
	}
	return err
}

// maxIndexed returns one more than the highest log index the store records
// (0 when none) and whether the store holds any record.
func (s *statementFile) maxIndexed() (uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.hdr.maxIndex, s.idx.hdr.count > 0
}

// indexedSet returns a bit set of the log indices below size that the store
// records (read from the index in one pass; a damaged index slot is an
// error).
func (s *statementFile) indexedSet(size uint64) ([]uint64, error) {
	set := make([]uint64, (size+63)/64)
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := s.idx.each(func(_ storage.Entry, m meta) {
		if i := m.index; i != 0 && i-1 < size {
			set[(i-1)/64] |= 1 << ((i - 1) % 64)
		}
	})
	return set, err
}

// has reports whether the store has a record of entry.
func (s *statementFile) has(e storage.Entry) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok, err := s.lookup(e)
	return ok, err
}

// noSpace marks err as a full-disk error (storage.ErrNoSpace) when it is one.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	}
	return err
}
