// Package posix is the embedded storage backend of the Transparency Service:
// Tessera's POSIX driver for the log and an append-only, group-committed file
// for the statement store, both in one data directory. Nothing else needs to
// be installed or started.
//
// Layout of the data directory (see docs/design/transparency.md):
//
//	lock              held (flock) by the process that has the directory open
//	log/              the Tessera tlog-tiles tree (checkpoint, tile/…, .state/)
//	statements        the statement store (see OpenStatements)
//	statements.index  its entry index (derived: rebuilt from statements when
//	                  it was not closed cleanly)
//
// [Open] refuses, with an error wrapping [storage.ErrLocked], a directory that
// another process has open, and, with an error wrapping [storage.ErrCorrupt],
// damaged state it must not paper over; [Repair] rebuilds the statement store
// from what survives of it and the log.
package posix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	tposix "github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// Config configures the POSIX backend.
type Config struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// Signer signs checkpoints (a C2SP signed-note key); its name is the log
	// origin. Required.
	Signer note.Signer
	// CheckpointInterval is the minimum time between published checkpoints
	// (Tessera's POSIX minimum is 100 ms). Default 100 ms.
	CheckpointInterval time.Duration
	// BatchMaxAge is how long the first entry of a batch waits for more.
	// Default 10 ms.
	BatchMaxAge time.Duration
	// BatchMaxSize is the largest batch sequenced at once. Default 1024.
	BatchMaxSize uint
	// Pushback bounds entries sequenced but not yet integrated. Default 8192.
	Pushback uint
	// Witnesses, when it has components, are sent every new checkpoint
	// (C2SP tlog-witness) and their cosignatures are added to it before it
	// is published, as WitnessOptions say (Tessera's WithWitnesses).
	Witnesses      tessera.WitnessGroup
	WitnessOptions tessera.WitnessOptions
	// Logger receives the rare events of the store (a torn tail cut at
	// open). Default: discard.
	Logger *slog.Logger
}

// ErrPushback is returned by Append when the log is overloaded; callers
// should retry later (HTTP 503 + Retry-After).
var ErrPushback = tessera.ErrPushback

// Log is a storage.Log on Tessera's POSIX driver.
type Log struct {
	add      tessera.AddFn
	reader   tessera.LogReader
	shutdown func(context.Context) error
	cancel   context.CancelFunc
	onClose  func() error
}

// OpenLog opens or creates the Tessera log in cfg.Dir/log.
func OpenLog(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Signer == nil {
		return nil, errors.New("open log: a checkpoint signer is required")
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = 100 * time.Millisecond
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = 10 * time.Millisecond
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = 1024
	}
	if cfg.Pushback == 0 {
		cfg.Pushback = 8192
	}
	dir := filepath.Join(cfg.Dir, "log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	// The appender's background goroutines live until Close, not until the
	// caller's ctx ends.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	driver, err := tposix.New(lctx, tposix.Config{Path: dir})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open tessera posix driver: %w", err)
	}
	opts := storage.AppendOptions(cfg.Signer, cfg.CheckpointInterval, cfg.BatchMaxAge, cfg.BatchMaxSize, cfg.Pushback,
		cfg.Witnesses, cfg.WitnessOptions)
	app, shutdown, reader, err := tessera.NewAppender(lctx, driver, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start tessera appender: %w", err)
	}
	return &Log{add: app.Add, reader: reader, shutdown: shutdown, cancel: cancel}, nil
}

// Append implements storage.Log.
func (l *Log) Append(ctx context.Context, entry storage.Entry) (uint64, error) {
	idx, err := l.add(ctx, tessera.NewEntry(entry[:]))()
	if err != nil {
		return 0, fmt.Errorf("append to log: %w", err)
	}
	return idx.Index, nil
}

// ReadCheckpoint implements storage.Log.
func (l *Log) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return l.reader.ReadCheckpoint(ctx)
}

// ReadTile implements storage.Log.
func (l *Log) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return l.reader.ReadTile(ctx, level, index, p)
}

// ReadEntryBundle implements storage.Log.
func (l *Log) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return l.reader.ReadEntryBundle(ctx, index, p)
}

// IntegratedSize implements storage.Log.
func (l *Log) IntegratedSize(ctx context.Context) (uint64, error) {
	return l.reader.IntegratedSize(ctx)
}

// Close publishes what is integrated and stops the appender.
func (l *Log) Close(ctx context.Context) error {
	err := l.shutdown(ctx)
	l.cancel()
	if err != nil {
		err = fmt.Errorf("shut down log: %w", err)
	}
	if l.onClose != nil {
		if cerr := l.onClose(); err == nil {
			err = cerr
		}
		l.onClose = nil
	}
	return err
}

// Open opens both halves of the embedded backend in cfg.Dir. It takes an
// exclusive lock on the directory, held until both halves are closed; a
// directory another process holds gives an error wrapping
// [storage.ErrLocked]. It refuses to start (an error wrapping
// [storage.ErrCorrupt]) on a damaged statement store, on a statement store
// that is missing or empty while the log holds entries, and on a log shorter
// than the indices the statement store records.
func Open(ctx context.Context, cfg Config) (*Log, storage.Statements, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(cfg.Dir, "statements")
	var o options
	if cfg.Logger != nil {
		o.logger = cfg.Logger
	}
	hadStore := false
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		hadStore = true
	}
	st, err := openStatements(path, o)
	if err != nil {
		_ = lock.release() // the open error is the one to report
		return nil, nil, err
	}
	lg, err := OpenLog(ctx, cfg)
	if err != nil {
		st.Close()
		_ = lock.release() // the open error is the one to report
		return nil, nil, err
	}
	fail := func(err error) (*Log, storage.Statements, error) {
		st.Close()
		lg.Close(ctx)
		_ = lock.release() // the open error is the one to report
		return nil, nil, err
	}
	size, err := lg.IntegratedSize(ctx)
	if err != nil {
		return fail(fmt.Errorf("read log size: %w", err))
	}
	maxIndex, any := st.maxIndexed()
	switch {
	case size > 0 && !hadStore:
		return fail(fmt.Errorf("%w: statement store %s is missing or empty but the log in %s holds %d entries",
			storage.ErrCorrupt, path, filepath.Join(cfg.Dir, "log"), size))
	case size > 0 && !any:
		return fail(fmt.Errorf("%w: statement store %s holds no statement but the log in %s holds %d entries",
			storage.ErrCorrupt, path, filepath.Join(cfg.Dir, "log"), size))
	case maxIndex > size:
		return fail(fmt.Errorf("%w: statement store %s records log index %d but the log in %s holds only %d entries (the log was deleted, truncated or restored from an older copy)",
			storage.ErrCorrupt, path, maxIndex-1, filepath.Join(cfg.Dir, "log"), size))
	}
	if err := checkCovered(ctx, lg, st, size, filepath.Join(cfg.Dir, "log")); err != nil {
		return fail(err)
	}
	lock.hold(2)
	lg.onClose = lock.release
	st.onClose = lock.release
	return lg, st, nil
}

// checkCovered checks that the statement store has a record of every log
// entry. Entries whose index record is in the store are covered; the rest
// (after a clean shutdown none, after a crash the few whose index records
// were not yet synced) are read from the log and looked up. A log entry the
// store knows nothing about means the store lost acknowledged records
// (truncated, replaced or restored from an older copy).
func checkCovered(ctx context.Context, lg *Log, st *statementFile, size uint64, logDir string) error {
	recorded, err := st.indexedSet(size)
	if err != nil {
		return fmt.Errorf("check the statement store against the log: %w", err)
	}
	first := uint64(0)
	for first < size && recorded[first/64]&(1<<(first%64)) != 0 {
		first++
	}
	var eb api.EntryBundle
	loaded := ^uint64(0)
	for i := first; i < size; i++ {
		if recorded[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		if b := i / layout.EntryBundleWidth; b != loaded {
			raw, err := lg.ReadEntryBundle(ctx, b, layout.PartialTileSize(0, b, size))
			if err != nil {
				return fmt.Errorf("check the statement store against the log: read entry bundle %d: %w", b, err)
			}
			eb = api.EntryBundle{}
			if err := eb.UnmarshalText(raw); err != nil {
				return fmt.Errorf("%w: log %s: entry bundle %d: %w", storage.ErrCorrupt, logDir, b, err)
			}
			loaded = b
		}
		j := i % layout.EntryBundleWidth
		if j >= uint64(len(eb.Entries)) || len(eb.Entries[j]) != storage.EntrySize {
			return fmt.Errorf("%w: log %s: entry %d is missing or malformed in its bundle", storage.ErrCorrupt, logDir, i)
		}
		ok, err := st.has(storage.Entry(eb.Entries[j]))
		if err != nil {
			return fmt.Errorf("check the statement store against the log: %w", err)
		}
		if !ok {
			return fmt.Errorf("%w: the log in %s holds entry %x at index %d but the statement store %s has no record of it (the store was truncated, replaced or restored from an older copy)",
				storage.ErrCorrupt, logDir, eb.Entries[j], i, st.path)
		}
	}
	return nil
}
