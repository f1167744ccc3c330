package aws

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// replaySchema holds the one-time token ids (CI token, DPoP and WPT jti)
// used on any replica, keyed by scope and the SHA-256 of the id, until they
// expire (Unix milliseconds).
const replaySchema = `CREATE TABLE IF NOT EXISTS tf_replay (
	scope   VARCHAR(16) NOT NULL,
	id      BINARY(32) NOT NULL,
	expires BIGINT NOT NULL,
	PRIMARY KEY (scope, id),
	KEY tf_replay_expires (expires)
)`

// replayTimeout bounds one database round trip of a replay check: a token
// exchange or registration waits at most this long before it is refused
// with wimse.ErrReplayUnavailable.
const replayTimeout = 2 * time.Second

// sweepEvery is how many recorded ids trigger one deletion of expired rows.
const sweepEvery = 4096

// Replay is the replicas' shared record of used one-time token ids, in the
// database the AWS backend already uses: an id recorded by one replica is
// refused by every other until it expires. It is safe for concurrent use.
type Replay struct {
	db     *sql.DB
	log    *slog.Logger
	writes atomic.Uint64
}

// OpenReplay opens the shared replay record on the database dsn (the same
// DSN as the log's), creating its table if missing. logger receives the
// database errors, which are not returned to callers (they would name
// internal addresses); nil discards them.
func OpenReplay(ctx context.Context, dsn string, logger *slog.Logger) (*Replay, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open replay store: database DSN: %w", err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open replay store: database: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxLifetime(10 * time.Minute)
	if _, err := db.ExecContext(ctx, replaySchema); err != nil {
		db.Close()
		return nil, dbErr(fmt.Sprintf("create the replay table in database %q at %s", cfg.DBName, cfg.Addr), err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Replay{db: db, log: logger}, nil
}

// Scope returns the record of one kind of token ("ci", "dpop", "wpt"; at
// most 16 bytes), implementing wimse.Replayer. Owner limits are not shared:
// wrap it with wimse.Layered over a local cache for them.
func (r *Replay) Scope(name string) wimse.Replayer {
	return replayScope{r: r, name: name}
}

// Close closes the database handle.
func (r *Replay) Close() error { return r.db.Close() }

type replayScope struct {
	r    *Replay
	name string
}

// UseFor records id until expires. An id already recorded and unexpired at
// now is refused with wimse.ErrReplay; a database failure with
// wimse.ErrReplayUnavailable (the token is refused: fail closed).
func (s replayScope) UseFor(_, id string, expires, now time.Time) error {
	if id == "" || len(id) > wimse.MaxJTILen {
		return fmt.Errorf("%w: jti must be 1 to %d bytes", wimse.ErrMalformed, wimse.MaxJTILen)
	}
	if s.name == "" || len(s.name) > 16 {
		return fmt.Errorf("%w: replay scope %q must be 1 to 16 bytes", wimse.ErrReplayUnavailable, s.name)
	}
	key := sha256.Sum256([]byte(id))
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	defer cancel()
	// A new id inserts (1 row affected); an expired one is overwritten (2);
	// an unexpired one is left as it is (0: a replay). The driver reports
	// changed rows, not matched rows (clientFoundRows is off).
	res, err := s.r.db.ExecContext(ctx,
		`INSERT INTO tf_replay (scope, id, expires) VALUES (?, ?, ?)
		 ON DUPLICATE KEY UPDATE expires = IF(expires <= ?, VALUES(expires), expires)`,
		s.name, key[:], expires.UnixMilli(), now.UnixMilli())
	if err != nil {
		return s.r.unavailable("record a token id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.r.unavailable("record a token id", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: jti was already used (on this or another replica)", wimse.ErrReplay)
	}
	if s.r.writes.Add(1)%sweepEvery == 0 {
		go s.r.sweep(now)
	}
	return nil
}

func (r *Replay) unavailable(what string, err error) error {
	r.log.Warn("replay store", slog.String("op", what), slog.Any("error", err))
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: the database did not answer within %s", wimse.ErrReplayUnavailable, what, replayTimeout)
	}
	return fmt.Errorf("%w: %s: the database is unreachable", wimse.ErrReplayUnavailable, what)
}

// sweep deletes expired ids, a bounded batch at a time (best effort: a
// failure leaves them for the next sweep; expired rows never refuse a
// token).
func (r *Replay) sweep(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.db.ExecContext(ctx, `DELETE FROM tf_replay WHERE expires <= ? LIMIT 10000`, now.UnixMilli()); err != nil {
		r.log.Warn("replay store: delete expired ids", slog.Any("error", err))
	}
}
