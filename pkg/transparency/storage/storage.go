// Package storage defines the two small interfaces behind which the
// Transparency Service keeps its state, so that a second backend (Tessera's
// AWS driver on a MySQL-compatible database plus an S3-compatible bucket) can
// be added without touching the service logic:
//
//   - [Log]: the append-only Merkle log (Tessera), whose entries are the
//     32-byte SCITT entry hashes of design.md §2.2, read back through the
//     C2SP tlog-tiles API (checkpoint, hash tiles, entry bundles).
//   - [Statements]: the statement store, content-addressed by entry, with the
//     entry→index map and the pending registrations.
//
// Every backend must pass storagetest.Run. The embedded default lives in
// package posix.
package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"time"
)

// EntrySize is the size of a log entry: SHA-256 of the registered statement.
const EntrySize = 32

// Entry is a log entry: SHA-256 of a Signed Statement whose unprotected header
// was replaced by the empty map (design.md §2.2). It is also the statement's
// key in the statement store.
type Entry = [EntrySize]byte

// ErrNotFound is returned by [Statements] when no record exists for an entry.
var ErrNotFound = errors.New("entry not found")

// NotFound returns the error for an unknown entry: it wraps [ErrNotFound]
// and names the entry. The message is formatted only when read (most of
// these errors are lookups of new entries, on every registration).
func NotFound(e Entry) error { return notFound(e) }

type notFound Entry

func (e notFound) Error() string { return hex.EncodeToString(e[:]) + ": " + ErrNotFound.Error() }

func (notFound) Unwrap() error { return ErrNotFound }

// ErrClosed is returned by backends used after Close.
var ErrClosed = errors.New("storage closed")

// ErrCorrupt is returned when a backend opens on damaged state that it will
// not repair by itself: a damaged record before the end of the statement
// store, a statement store that is missing or empty next to a non-empty log,
// or a log shorter than the indices the statement store records. The error
// names the file and, for a damaged record, the byte offset. The operator
// repairs the data directory (posix.Repair, `trustfabric serve --repair`).
var ErrCorrupt = errors.New("storage corrupt")

// ErrLocked is returned when another process holds the storage (two servers
// on one data directory would each append and lose the other's records).
var ErrLocked = errors.New("storage locked by another process")

// ErrNoSpace is wrapped by write errors caused by a full disk or an
// exhausted quota; the write may succeed later.
var ErrNoSpace = errors.New("no space left on storage")

// ErrUnavailable is wrapped by errors caused by a storage service (a
// database, an object store) being unreachable or failing; the operation may
// succeed later (HTTP 503 + Retry-After).
var ErrUnavailable = errors.New("storage unavailable")

// ErrLost is returned by [Statements.Statement] for an entry that the log
// holds but whose statement bytes were lost (a repair found the entry in the
// log and no intact statement for it). Registering the same statement again
// restores the bytes.
var ErrLost = errors.New("statement lost")

// Log is the append-only Merkle log.
//
// Append returns only once the entry is durably sequenced at the returned
// index: after a crash, the entry is present at that index. Entries become
// provable once a published checkpoint covers them. Read methods follow the
// tlog-tiles API and return errors wrapping os.ErrNotExist for missing
// resources.
type Log interface {
	Append(ctx context.Context, entry Entry) (uint64, error)
	// ReadCheckpoint returns the latest published signed checkpoint (a C2SP
	// signed note).
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
	// IntegratedSize is the number of durable entries; it may exceed the size of
	// the published checkpoint and must never be used to build public proofs.
	IntegratedSize(ctx context.Context) (uint64, error)
	Close(ctx context.Context) error
}

// Deduplicator is implemented by a [Log] whose Append is idempotent across
// every process that opened the same storage (replicas): appending an entry
// that is already in the log, or being appended by another process, returns
// its index instead of adding a second leaf. The service then recovers
// pending registrations by appending them again instead of searching the log,
// and adopts registrations other replicas left pending.
type Deduplicator interface {
	Deduplicates() bool
}

// Adopter is implemented by a deduplicating [Log] that can tell whether a
// live process is appending an entry. AppendUnclaimed appends entry unless a
// live process (another replica, or this one) is appending it: then it
// returns ok false and leaves the entry to that process. The service adopts
// other replicas' pending registrations through it, so that it does not wait
// on every registration another replica is serving.
type Adopter interface {
	AppendUnclaimed(ctx context.Context, entry Entry) (index uint64, ok bool, err error)
}

// Record is what the statement store knows about an entry.
type Record struct {
	Entry Entry
	// Registered is the registration time (receipt iat), fixed when the
	// statement was first stored.
	Registered time.Time
	// Index is the log index; valid only when Indexed is true.
	Index   uint64
	Indexed bool
	// Size is the length of the stored statement in bytes.
	Size int
	// Lost is set when the log holds the entry (at Index) but its statement
	// bytes and registration time were lost; see [ErrLost].
	Lost bool
}

// Statements is the statement store: registered statements (unprotected
// header {}) content-addressed by entry, plus the entry→index map.
//
// Put is durable when it returns. A second Put of the same entry keeps the
// first record and reports created=false. SetIndex may be lazy (the service
// rebuilds lost indices from the log at start-up) but must be durable after
// Close. Get and Statement return errors wrapping [ErrNotFound] for unknown
// entries; for a lost entry Get returns its record with Lost set, Statement an
// error wrapping [ErrLost], and Put stores the statement again (created=true)
// keeping the log index. Unindexed lists the stored entries that have no index
// yet. Write errors caused by a full disk wrap [ErrNoSpace].
type Statements interface {
	Put(ctx context.Context, entry Entry, statement []byte, registered time.Time) (rec Record, created bool, err error)
	Get(ctx context.Context, entry Entry) (Record, error)
	Statement(ctx context.Context, entry Entry) ([]byte, error)
	SetIndex(ctx context.Context, entry Entry, index uint64) error
	Unindexed(ctx context.Context) ([]Entry, error)
	Close() error
}
