package aws

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// schema is created at open if missing. Registration times are Unix
// nanoseconds; claimed_at is the database's clock, so replicas' clocks need
// not agree.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS tf_statements (
		entry      BINARY(32) NOT NULL PRIMARY KEY,
		registered BIGINT NOT NULL,
		idx        BIGINT UNSIGNED NULL,
		size       INT NOT NULL,
		statement  LONGBLOB NOT NULL,
		KEY tf_statements_idx (idx)
	)`,
	`CREATE TABLE IF NOT EXISTS tf_log_index (
		entry      BINARY(32) NOT NULL PRIMARY KEY,
		idx        BIGINT UNSIGNED NULL,
		owner      VARCHAR(64) NOT NULL,
		claimed_at DATETIME(6) NOT NULL,
		from_size  BIGINT UNSIGNED NOT NULL
	)`,
}

// Statements is a storage.Statements in the database: every replica sees
// every registration.
type Statements struct {
	db *sql.DB
}

func openStatements(ctx context.Context, dsn *mysql.Config) (*Statements, error) {
	dsn.ParseTime = false
	connector, err := mysql.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open aws storage: database: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	db.SetConnMaxLifetime(10 * time.Minute)
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, dbErr(fmt.Sprintf("create tables in database %q at %s", dsn.DBName, dsn.Addr), err)
		}
	}
	return &Statements{db: db}, nil
}

// Put implements storage.Statements.
func (s *Statements) Put(ctx context.Context, entry storage.Entry, statement []byte, registered time.Time) (storage.Record, bool, error) {
	if len(statement) > MaxStatementSize {
		return storage.Record{}, false, fmt.Errorf("statement of %d bytes exceeds the store limit of %d", len(statement), MaxStatementSize)
	}
	res, err := s.exec(ctx,
		"INSERT IGNORE INTO tf_statements (entry, registered, size, statement) VALUES (?, ?, ?, ?)",
		entry[:], registered.UnixNano(), len(statement), statement)
	if err != nil {
		return storage.Record{}, false, dbErr("store statement", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return storage.Record{Entry: entry, Registered: time.Unix(0, registered.UnixNano()), Size: len(statement)}, true, nil
	}
	rec, err := s.Get(ctx, entry)
	return rec, false, err
}

// Get implements storage.Statements.
func (s *Statements) Get(ctx context.Context, entry storage.Entry) (storage.Record, error) {
	var reg int64
	var idx sql.NullInt64
	var size int
	err := s.db.QueryRowContext(ctx, "SELECT registered, idx, size FROM tf_statements WHERE entry = ?", entry[:]).
		Scan(&reg, &idx, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Record{}, storage.NotFound(entry)
	}
	if err != nil {
		return storage.Record{}, dbErr("read statement record", err)
	}
	return storage.Record{Entry: entry, Registered: time.Unix(0, reg), Index: uint64(idx.Int64), Indexed: idx.Valid, Size: size}, nil
}

// Statement implements storage.Statements.
func (s *Statements) Statement(ctx context.Context, entry storage.Entry) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, "SELECT statement FROM tf_statements WHERE entry = ?", entry[:]).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storage.NotFound(entry)
	}
	if err != nil {
		return nil, dbErr("read statement", err)
	}
	return b, nil
}

// SetIndex implements storage.Statements.
func (s *Statements) SetIndex(ctx context.Context, entry storage.Entry, index uint64) error {
	res, err := s.exec(ctx, "UPDATE tf_statements SET idx = ? WHERE entry = ? AND idx IS NULL", index, entry[:])
	if err != nil {
		return dbErr("record log index", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	rec, err := s.Get(ctx, entry)
	if err != nil {
		return err
	}
	if rec.Indexed && rec.Index != index {
		return fmt.Errorf("entry %x already at index %d, not %d", entry[:], rec.Index, index)
	}
	return nil
}

// Unindexed implements storage.Statements. Entries whose append another
// replica completed are indexed first, so only the pending ones are listed.
//
// Both steps read without locks (InnoDB's consistent reads) and index one
// row per statement, the same single-row update as SetIndex: one UPDATE
// joining the two tables locked every pending row and its secondary index
// entry at once, and deadlocked (Error 1213) with the SetIndex of
// registrations in flight on the other replicas.
func (s *Statements) Unindexed(ctx context.Context) ([]storage.Entry, error) {
	done, err := s.entries(ctx, "index statements appended by other replicas",
		`SELECT s.entry, l.idx FROM tf_statements s JOIN tf_log_index l ON s.entry = l.entry
		WHERE s.idx IS NULL AND l.idx IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	for i, e := range done.entries {
		if err := s.SetIndex(ctx, e, done.indexes[i]); err != nil {
			return nil, err
		}
	}
	pending, err := s.entries(ctx, "list unindexed statements", "SELECT entry, NULL FROM tf_statements WHERE idx IS NULL")
	if err != nil {
		return nil, err
	}
	return pending.entries, nil
}

// entryRows are the rows of a query of (entry, index or NULL).
type entryRows struct {
	entries []storage.Entry
	indexes []uint64
}

func (s *Statements) entries(ctx context.Context, what, query string) (entryRows, error) {
	var out entryRows
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return out, dbErr(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		var idx sql.NullInt64
		if err := rows.Scan(&b, &idx); err != nil {
			return out, dbErr(what, err)
		}
		if len(b) != storage.EntrySize {
			return out, fmt.Errorf("%w: tf_statements holds an entry of %d bytes", storage.ErrCorrupt, len(b))
		}
		out.entries = append(out.entries, storage.Entry(b))
		out.indexes = append(out.indexes, uint64(idx.Int64))
	}
	if err := rows.Err(); err != nil {
		return out, dbErr(what, err)
	}
	return out, nil
}

// Transient lock conflicts: InnoDB rolls back one statement of a deadlock
// and asks for it to be run again; a lock wait can time out under load.
const (
	errLockDeadlock    = 1213
	errLockWaitTimeout = 1205
	lockRetries        = 5
)

// exec runs a single-statement write, running it again (after a short,
// growing pause) when the database chose it as a deadlock's victim or its
// lock wait timed out. Each is one autocommit statement, so running it again
// is exactly what the database asks for.
func (s *Statements) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	pause := time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := s.db.ExecContext(ctx, query, args...)
		var me *mysql.MySQLError
		if err == nil || attempt == lockRetries || !errors.As(err, &me) ||
			(me.Number != errLockDeadlock && me.Number != errLockWaitTimeout) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause + time.Duration(rand.Int64N(int64(pause)))):
		}
		pause *= 4
	}
}

// Close implements storage.Statements.
func (s *Statements) Close() error { return s.db.Close() }
