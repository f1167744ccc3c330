// Package posix is the embedded storage backend of the Transparency Service:
// Tessera's POSIX driver for the log and an append-only, group-committed file
// for the statement store, both in one data directory. Nothing else needs to
// be installed or started.
//
// Layout of the data directory (see docs/design/transparency.md):
//
//	log/          the Tessera tlog-tiles tree (checkpoint, tile/…, .state/)
//	statements    the statement store (see OpenStatements)
package posix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera"
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
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithPushback(cfg.Pushback).
		WithCheckpointRepublishInterval(10 * time.Minute)
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
		return fmt.Errorf("shut down log: %w", err)
	}
	return nil
}

// Open opens both halves of the embedded backend in cfg.Dir.
func Open(ctx context.Context, cfg Config) (*Log, storage.Statements, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := OpenStatements(filepath.Join(cfg.Dir, "statements"))
	if err != nil {
		return nil, nil, err
	}
	lg, err := OpenLog(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return lg, st, nil
}
