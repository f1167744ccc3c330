// Package aws is the distributed storage backend of the Transparency Service:
// Tessera's AWS driver (a MySQL-compatible database for sequencing, an
// S3-compatible bucket for tiles, entry bundles and the checkpoint) plus the
// statement store and the entry index in the same database. Several service
// processes ("replicas") may open the same database and bucket: they form one
// log, and registering one statement through two replicas gives one entry.
//
// It runs unchanged on Aurora MySQL + Amazon S3 and on this machine's MariaDB +
// versitygw (.ci/backends.sh): the S3 endpoint and path-style addressing are
// configurable; credentials and region come from the standard AWS environment
// variables and shared config (aws-sdk-go-v2's default chain).
//
// Tables this package adds next to Tessera's (docs/design/transparency.md,
// "The AWS backend"):
//
//	tf_statements   entry → registration time, log index, statement bytes
//	tf_log_index    entry → log index, with the claim of the replica
//	                appending it (owner, claimed_at, from_size)
//
// Appends are idempotent across replicas: before handing an entry to
// Tessera, a replica claims it in tf_log_index (INSERT IGNORE); a second
// replica appending the same entry waits for the claim holder's index. A
// claim that is not resolved within [Config.ClaimTimeout] (its holder died)
// is taken over: the log from the size at claim time is searched for the
// entry first, so a holder that died after sequencing does not cause a second
// leaf.
package aws

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-sql-driver/mysql"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	taws "github.com/transparency-dev/tessera/storage/aws"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// Config configures the AWS backend.
type Config struct {
	// DSN is the database, in go-sql-driver/mysql form
	// (user:password@tcp(host:port)/dbname). Required.
	DSN string
	// Bucket is the S3 bucket. Required.
	Bucket string
	// Endpoint is the S3 endpoint URL of a non-AWS S3-compatible store
	// (e.g. http://127.0.0.1:7070); empty means AWS S3.
	Endpoint string
	// BucketPrefix, when set, is prepended to every object name, so that
	// several logs can share a bucket (each with its own database).
	BucketPrefix string
	// PathStyle selects path-style addressing (bucket in the path), which
	// most self-hosted stores need.
	PathStyle bool
	// Signer signs checkpoints; its name is the log origin. Every replica of
	// one log must use the same signer. Required.
	Signer note.Signer
	// CheckpointInterval is the minimum time between published checkpoints.
	// Default 1 s (Tessera's AWS minimum).
	CheckpointInterval time.Duration
	// BatchMaxAge is how long the first entry of a batch waits for more.
	// Default 100 ms.
	BatchMaxAge time.Duration
	// BatchMaxSize is the largest batch sequenced at once. Default 512.
	BatchMaxSize uint
	// Pushback bounds entries sequenced but not yet integrated. Default 8192.
	Pushback uint
	// ClaimTimeout is how long another replica's unresolved claim on an
	// entry is honoured before it is taken over. Default 30 s.
	ClaimTimeout time.Duration
	// Witnesses, when it has components, are sent every new checkpoint
	// (C2SP tlog-witness) and their cosignatures are added to it before it
	// is published, as WitnessOptions say (Tessera's WithWitnesses). Every
	// replica must be given the same witnesses.
	Witnesses      tessera.WitnessGroup
	WitnessOptions tessera.WitnessOptions
	// Logger receives the rare events of the backend (claims taken over).
	// Default: discard.
	Logger *slog.Logger
}

// ErrPushback is returned by Append when the log is overloaded; callers
// should retry later (HTTP 503 + Retry-After).
var ErrPushback = tessera.ErrPushback

// MaxStatementSize bounds one stored statement.
const MaxStatementSize = 16 << 20

// Open opens the log and the statement store on cfg's database and bucket,
// creating the tables it needs.
func Open(ctx context.Context, cfg Config) (*Log, *Statements, error) {
	if cfg.DSN == "" || cfg.Bucket == "" {
		return nil, nil, errors.New("open aws storage: a database DSN and a bucket are required")
	}
	if cfg.Signer == nil {
		return nil, nil, errors.New("open aws storage: a checkpoint signer is required")
	}
	dsn, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, nil, fmt.Errorf("open aws storage: database DSN: %w", err)
	}
	st, err := openStatements(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	lg, err := openLog(ctx, cfg, st.db)
	if err != nil {
		st.db.Close()
		return nil, nil, err
	}
	return lg, st, nil
}

// sdkConfig loads the standard AWS configuration (environment, shared config
// files, instance roles) and points S3 at cfg.Endpoint.
func sdkConfig(ctx context.Context, cfg Config) (*awssdk.Config, func(*s3.Options), error) {
	c, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if c.Region == "" {
		if cfg.Endpoint == "" {
			return nil, nil, errors.New("no AWS region configured: set AWS_REGION (or region in the shared config)")
		}
		// Self-hosted stores accept any region; SigV4 needs one.
		c.Region = "us-east-1"
	}
	opts := func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = awssdk.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		if cfg.BucketPrefix != "" {
			withPrefix(cfg.BucketPrefix)(o)
		}
	}
	return &c, opts, nil
}

// Log is a storage.Log on Tessera's AWS driver whose Append is idempotent
// across every process that opened the same database.
type Log struct {
	add          tessera.AddFn
	reader       tessera.LogReader
	shutdown     func(context.Context) error
	cancel       context.CancelFunc
	db           *sql.DB
	owner        string
	claimTimeout time.Duration
	logger       *slog.Logger
}

func openLog(ctx context.Context, cfg Config, db *sql.DB) (*Log, error) {
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Second
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = 100 * time.Millisecond
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = 512
	}
	if cfg.Pushback == 0 {
		cfg.Pushback = 8192
	}
	if cfg.ClaimTimeout == 0 {
		cfg.ClaimTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sdk, s3opts, err := sdkConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open aws storage: %w", err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	driver, err := taws.New(lctx, taws.Config{SDKConfig: sdk, S3Options: s3opts, Bucket: cfg.Bucket, DSN: cfg.DSN,
		MaxOpenConns: 64, MaxIdleConns: 64})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open tessera aws driver: %w", err)
	}
	opts := storage.AppendOptions(cfg.Signer, cfg.CheckpointInterval, cfg.BatchMaxAge, cfg.BatchMaxSize, cfg.Pushback,
		cfg.Witnesses, cfg.WitnessOptions)
	app, shutdown, reader, err := tessera.NewAppender(lctx, driver, opts)
	if err != nil {
		cancel()
		return nil, unavailable(fmt.Errorf("start tessera appender on database and bucket %q: %w", cfg.Bucket, err))
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	return &Log{add: app.Add, reader: reader, shutdown: shutdown, cancel: cancel, db: db,
		owner: hex.EncodeToString(id[:]), claimTimeout: cfg.ClaimTimeout, logger: cfg.Logger}, nil
}

// claimState is what a replica found when it claimed an entry.
type claimState int

const (
	claimIndexed   claimState = iota // the entry has a log index
	claimMine                        // this replica appends it
	claimTaken                       // another replica is appending it
	claimTakenOver                   // this replica took over a stale claim
)

type claim struct {
	state    claimState
	index    uint64
	fromSize uint64
	renewed  bool // claimMine: this process already held the claim
}

// claim claims entry for this replica, or reports who has it.
func (l *Log) claim(ctx context.Context, e storage.Entry) (claim, error) {
	var next uint64
	if err := l.db.QueryRowContext(ctx, "SELECT next FROM SeqCoord WHERE id = 0").Scan(&next); err != nil {
		return claim{}, dbErr("read the next log index", err)
	}
	res, err := l.db.ExecContext(ctx,
		"INSERT IGNORE INTO tf_log_index (entry, owner, claimed_at, from_size) VALUES (?, ?, NOW(6), ?)", e[:], l.owner, next)
	if err != nil {
		return claim{}, dbErr("claim entry", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return claim{state: claimMine, fromSize: next}, nil
	}
	var idx sql.NullInt64
	var owner string
	var fromSize uint64
	var stale bool
	err = l.db.QueryRowContext(ctx,
		"SELECT idx, owner, from_size, claimed_at < NOW(6) - INTERVAL ? MICROSECOND FROM tf_log_index WHERE entry = ?",
		l.claimTimeout.Microseconds(), e[:]).Scan(&idx, &owner, &fromSize, &stale)
	if err != nil {
		return claim{}, dbErr("read entry claim", err)
	}
	switch {
	case idx.Valid:
		return claim{state: claimIndexed, index: uint64(idx.Int64)}, nil
	case owner == l.owner:
		_, err := l.db.ExecContext(ctx, "UPDATE tf_log_index SET claimed_at = NOW(6) WHERE entry = ? AND owner = ?", e[:], l.owner)
		if err != nil {
			return claim{}, dbErr("renew entry claim", err)
		}
		return claim{state: claimMine, fromSize: fromSize, renewed: true}, nil
	case stale:
		res, err := l.db.ExecContext(ctx,
			"UPDATE tf_log_index SET owner = ?, claimed_at = NOW(6) WHERE entry = ? AND owner = ? AND idx IS NULL",
			l.owner, e[:], owner)
		if err != nil {
			return claim{}, dbErr("take over entry claim", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			l.logger.WarnContext(ctx, "took over the stale claim of another replica",
				slog.String("entry", hex.EncodeToString(e[:])), slog.String("previous_owner", owner))
			return claim{state: claimTakenOver, fromSize: fromSize}, nil
		}
		return claim{state: claimTaken}, nil
	}
	return claim{state: claimTaken}, nil
}

// Append implements storage.Log. Appending an entry that any replica
// already appended returns its index.
func (l *Log) Append(ctx context.Context, entry storage.Entry) (uint64, error) {
	for {
		c, err := l.claim(ctx, entry)
		if err != nil {
			return 0, err
		}
		if c.state == claimTaken {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		return l.appendClaimed(ctx, entry, c)
	}
}

// AppendUnclaimed implements storage.Adopter: like Append, but an entry that
// a live process (another replica, or this one) is appending is left to it
// (ok false) instead of waited for.
func (l *Log) AppendUnclaimed(ctx context.Context, entry storage.Entry) (uint64, bool, error) {
	c, err := l.claim(ctx, entry)
	if err != nil {
		return 0, false, err
	}
	if c.state == claimTaken || c.renewed {
		return 0, false, nil
	}
	idx, err := l.appendClaimed(ctx, entry, c)
	return idx, err == nil, err
}

// appendClaimed finishes an append after claim c.
func (l *Log) appendClaimed(ctx context.Context, entry storage.Entry, c claim) (uint64, error) {
	switch c.state {
	case claimIndexed:
		return c.index, nil
	case claimTakenOver:
		// The previous holder may have sequenced the entry before it
		// died: look for it at or after the size at claim time.
		idx, found, err := l.find(ctx, entry, c.fromSize)
		if err != nil {
			return 0, err
		}
		if found {
			return l.record(ctx, entry, idx)
		}
	}
	f, err := l.add(ctx, tessera.NewEntry(entry[:]))()
	if err != nil {
		if errors.Is(err, tessera.ErrPushback) {
			return 0, fmt.Errorf("append to log: %w", err)
		}
		return 0, unavailable(fmt.Errorf("append to log: %w", err))
	}
	return l.record(ctx, entry, f.Index)
}

// record stores the index of an appended entry; if another replica recorded
// one first (it took over a claim this replica held too long), the first
// index stays and is returned.
func (l *Log) record(ctx context.Context, e storage.Entry, idx uint64) (uint64, error) {
	res, err := l.db.ExecContext(ctx, "UPDATE tf_log_index SET idx = ? WHERE entry = ? AND idx IS NULL", idx, e[:])
	if err != nil {
		return 0, dbErr("record log index", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return idx, nil
	}
	var first sql.NullInt64
	if err := l.db.QueryRowContext(ctx, "SELECT idx FROM tf_log_index WHERE entry = ?", e[:]).Scan(&first); err != nil {
		return 0, dbErr("read log index", err)
	}
	if !first.Valid {
		return 0, fmt.Errorf("record log index of %x: the claim vanished", e[:])
	}
	if uint64(first.Int64) != idx {
		l.logger.WarnContext(ctx, "an entry was appended twice after a claim was taken over; the first index stays",
			slog.String("entry", hex.EncodeToString(e[:])), slog.Int64("index", first.Int64), slog.Uint64("duplicate", idx))
	}
	return uint64(first.Int64), nil
}

// find looks for e in the log at indices ≥ from, once every index sequenced
// so far is integrated.
func (l *Log) find(ctx context.Context, e storage.Entry, from uint64) (uint64, bool, error) {
	next, err := l.reader.NextIndex(ctx)
	if err != nil {
		return 0, false, unavailable(fmt.Errorf("read next log index: %w", err))
	}
	var size uint64
	for {
		if size, err = l.reader.IntegratedSize(ctx); err != nil {
			return 0, false, unavailable(fmt.Errorf("read log size: %w", err))
		}
		if size >= next {
			break
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for b := from / layout.EntryBundleWidth; b*layout.EntryBundleWidth < size; b++ {
		raw, err := l.ReadEntryBundle(ctx, b, layout.PartialTileSize(0, b, size))
		if err != nil {
			return 0, false, fmt.Errorf("read entry bundle %d: %w", b, err)
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(raw); err != nil {
			return 0, false, fmt.Errorf("%w: entry bundle %d: %w", storage.ErrCorrupt, b, err)
		}
		for i, d := range eb.Entries {
			if string(d) == string(e[:]) {
				return b*layout.EntryBundleWidth + uint64(i), true, nil
			}
		}
	}
	return 0, false, nil
}

// Deduplicates reports that Append is idempotent across processes: appending
// an entry already appended (by any replica) returns its index.
func (l *Log) Deduplicates() bool { return true }

// ReadCheckpoint implements storage.Log.
func (l *Log) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	b, err := l.reader.ReadCheckpoint(ctx)
	return b, notExist(err)
}

// ReadTile implements storage.Log.
func (l *Log) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := l.reader.ReadTile(ctx, level, index, p)
	return b, notExist(err)
}

// ReadEntryBundle implements storage.Log.
func (l *Log) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	b, err := l.reader.ReadEntryBundle(ctx, index, p)
	return b, notExist(err)
}

// IntegratedSize implements storage.Log: the number of durable entries,
// which on this driver are the sequenced ones (Tessera commits a batch's
// indices to the database before Append returns; integrating them into tiles
// and bundles follows asynchronously).
func (l *Log) IntegratedSize(ctx context.Context) (uint64, error) {
	n, err := l.reader.NextIndex(ctx)
	if err != nil {
		return 0, unavailable(fmt.Errorf("read log size: %w", err))
	}
	return n, nil
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

// notExist makes a missing object an os.ErrNotExist (the storage.Log
// contract) and any other read failure an storage.ErrUnavailable.
func notExist(err error) error {
	if err == nil {
		return nil
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return unavailable(err)
}

func unavailable(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

func dbErr(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", storage.ErrUnavailable, what, err)
}
