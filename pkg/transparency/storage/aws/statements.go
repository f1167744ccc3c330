package aws

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	res, err := s.db.ExecContext(ctx,
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
	res, err := s.db.ExecContext(ctx, "UPDATE tf_statements SET idx = ? WHERE entry = ? AND idx IS NULL", index, entry[:])
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
func (s *Statements) Unindexed(ctx context.Context) ([]storage.Entry, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE tf_statements s JOIN tf_log_index l ON s.entry = l.entry
		SET s.idx = l.idx WHERE s.idx IS NULL AND l.idx IS NOT NULL`); err != nil {
		return nil, dbErr("index statements appended by other replicas", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT entry FROM tf_statements WHERE idx IS NULL")
	if err != nil {
		return nil, dbErr("list unindexed statements", err)
	}
	defer rows.Close()
	var out []storage.Entry
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, dbErr("list unindexed statements", err)
		}
		if len(b) != storage.EntrySize {
			return nil, fmt.Errorf("%w: tf_statements holds an entry of %d bytes", storage.ErrCorrupt, len(b))
		}
		out = append(out, storage.Entry(b))
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list unindexed statements", err)
	}
	return out, nil
}

// Close implements storage.Statements.
func (s *Statements) Close() error { return s.db.Close() }
