package aws_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/storagetest"
)

func signer(t *testing.T, origin string) note.Signer {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func config(tg awstest.Target, s note.Signer) aws.Config {
	return aws.Config{DSN: tg.DSN, Bucket: tg.Bucket, BucketPrefix: tg.Prefix, Endpoint: tg.Endpoint, PathStyle: tg.Endpoint != "",
		Signer: s, CheckpointInterval: time.Second, BatchMaxAge: 20 * time.Millisecond, ClaimTimeout: 2 * time.Second}
}

// TestConformance runs the storage conformance suite on MariaDB + S3.
func TestConformance(t *testing.T) {
	tg := awstest.New(t)
	const origin = "example.com/aws-conformance"
	s := signer(t, origin)
	storagetest.Run(t, func(ctx context.Context) (storage.Log, storage.Statements, error) {
		return aws.Open(ctx, config(tg, s))
	}, origin)
}

// TestReplicasAppendOnce appends the same entries through two replicas of one
// log at once: each entry gets one index, both replicas agree on it, and the
// log holds each entry once.
func TestReplicasAppendOnce(t *testing.T) {
	tg := awstest.New(t)
	ctx := t.Context()
	s := signer(t, "example.com/replicas")
	a, sa, err := aws.Open(ctx, config(tg, s))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sa.Close(); a.Close(ctx) }()
	b, sb, err := aws.Open(ctx, config(tg, s))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sb.Close(); b.Close(ctx) }()

	const n = 30
	got := make([][2]uint64, n)
	errs := make([]error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		e := sha256.Sum256(fmt.Appendf(nil, "entry %d", i))
		for r, lg := range []*aws.Log{a, b} {
			wg.Go(func() { got[i][r], errs[2*i+r] = lg.Append(ctx, e) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for i, g := range got {
		if g[0] != g[1] {
			t.Fatalf("entry %d got index %d on one replica and %d on the other", i, g[0], g[1])
		}
		if seen[g[0]] {
			t.Fatalf("index %d given to two entries", g[0])
		}
		seen[g[0]] = true
	}
	if size, err := a.IntegratedSize(ctx); err != nil || size != n {
		t.Fatalf("log size = %d, %v; want %d (one leaf per entry)", size, err, n)
	}
}

// TestClaimTakeover: a replica that died holding a claim (before appending,
// or after appending but before recording the index) does not block the
// entry forever, and its appended entry is found instead of appended again.
func TestClaimTakeover(t *testing.T) {
	tg := awstest.New(t)
	ctx := t.Context()
	s := signer(t, "example.com/takeover")
	lg, st, err := aws.Open(ctx, config(tg, s))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close(); lg.Close(ctx) }()
	db, err := sql.Open("mysql", tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Died after appending: the index was never recorded.
	e1 := sha256.Sum256([]byte("appended by a replica that died"))
	i1, err := lg.Append(ctx, e1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE tf_log_index SET idx = NULL, owner = 'dead', claimed_at = NOW(6) WHERE entry = ?", e1[:]); err != nil {
		t.Fatal(err)
	}
	// Died before appending.
	e2 := sha256.Sum256([]byte("claimed by a replica that died"))
	if _, err := db.Exec("INSERT INTO tf_log_index (entry, owner, claimed_at, from_size) VALUES (?, 'dead', NOW(6), 1)", e2[:]); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	got1, err := lg.Append(ctx, e1)
	if err != nil {
		t.Fatal(err)
	}
	if got1 != i1 {
		t.Fatalf("taken-over entry got index %d, want its existing index %d", got1, i1)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("a fresh claim was taken over after %v (claim timeout 2s)", waited)
	}
	i2, err := lg.Append(ctx, e2)
	if err != nil {
		t.Fatal(err)
	}
	if i2 != 1 {
		t.Fatalf("entry claimed by a dead replica got index %d, want 1", i2)
	}
	if size, err := lg.IntegratedSize(ctx); err != nil || size != 2 {
		t.Fatalf("log size = %d, %v; want 2", size, err)
	}
}

// TestAppendUnclaimed: adoption leaves an entry a live replica is appending
// to it, appends an unclaimed one, and takes over a stale claim.
func TestAppendUnclaimed(t *testing.T) {
	tg := awstest.New(t)
	ctx := t.Context()
	lg, st, err := aws.Open(ctx, config(tg, signer(t, "example.com/adopt")))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close(); lg.Close(ctx) }()
	db, err := sql.Open("mysql", tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	live := sha256.Sum256([]byte("being appended by a live replica"))
	if _, err := db.Exec("INSERT INTO tf_log_index (entry, owner, claimed_at, from_size) VALUES (?, 'live', NOW(6), 0)", live[:]); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := lg.AppendUnclaimed(ctx, live); err != nil || ok {
		t.Fatalf("AppendUnclaimed of an entry a live replica claims = ok %v, %v; want left to it", ok, err)
	}
	free := sha256.Sum256([]byte("stored by a replica that died before claiming"))
	i, ok, err := lg.AppendUnclaimed(ctx, free)
	if err != nil || !ok || i != 0 {
		t.Fatalf("AppendUnclaimed of an unclaimed entry = %d, %v, %v; want index 0", i, ok, err)
	}
	if got, ok, err := lg.AppendUnclaimed(ctx, free); err != nil || !ok || got != i {
		t.Fatalf("AppendUnclaimed of an indexed entry = %d, %v, %v; want its index %d", got, ok, err, i)
	}
	time.Sleep(2500 * time.Millisecond) // the live claim goes stale (claim timeout 2s)
	j, ok, err := lg.AppendUnclaimed(ctx, live)
	if err != nil || !ok || j != 1 {
		t.Fatalf("AppendUnclaimed of a stale claim = %d, %v, %v; want taken over at index 1", j, ok, err)
	}
	if size, err := lg.IntegratedSize(ctx); err != nil || size != 2 {
		t.Fatalf("log size = %d, %v; want 2", size, err)
	}
}

// TestLockConflictsRetried holds the lock on a statement's row past the
// database's lock wait timeout (1 s for this test's connections): SetIndex
// runs its update again instead of failing with Error 1205, and succeeds
// once the lock is released. (A deadlock, Error 1213, is retried the same
// way; one cannot be produced on demand.)
func TestLockConflictsRetried(t *testing.T) {
	tg := awstest.New(t)
	ctx := t.Context()
	cfg, err := mysql.ParseDSN(tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["innodb_lock_wait_timeout"] = "1"
	c := config(tg, signer(t, "example.com/locks"))
	c.DSN = cfg.FormatDSN()
	lg, st, err := aws.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close(); lg.Close(ctx) }()

	e := storage.Entry(sha256.Sum256([]byte("locked")))
	if _, _, err := st.Put(ctx, e, []byte("statement"), time.Now()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if err := tx.QueryRowContext(ctx, "SELECT entry FROM tf_statements WHERE entry = ? FOR UPDATE", e[:]).Scan(&b); err != nil {
		t.Fatal(err)
	}
	const held = 1500 * time.Millisecond
	released := make(chan error, 1)
	go func() {
		time.Sleep(held)
		released <- tx.Commit()
	}()
	start := time.Now()
	if err := st.SetIndex(ctx, e, 7); err != nil {
		t.Fatalf("SetIndex while another transaction held the row for %v: %v", held, err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("SetIndex returned after %v: the row lock did not hold it back, so nothing was retried", waited)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(ctx, e)
	if err != nil || !rec.Indexed || rec.Index != 7 {
		t.Fatalf("after SetIndex: %+v, %v; want index 7", rec, err)
	}
}
