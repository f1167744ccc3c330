package aws

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// TestReplayShared: two replicas' replay records on one database: an id used
// on one is refused on the other until it expires; scopes are separate; a
// database that is gone refuses with ErrReplayUnavailable without naming
// its address.
func TestReplayShared(t *testing.T) {
	target := awstest.New(t)
	a, err := OpenReplay(t.Context(), target.DSN, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenReplay(t.Context(), target.DSN, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	now := time.Now()
	exp := now.Add(time.Minute)
	if err := a.Scope("ci").UseFor("", "token-1", exp, now); err != nil {
		t.Fatal(err)
	}
	if err := b.Scope("ci").UseFor("", "token-1", exp, now); !errors.Is(err, wimse.ErrReplay) {
		t.Fatalf("id used on replica a, then on b: %v, want ErrReplay", err)
	}
	if err := b.Scope("dpop").UseFor("", "token-1", exp, now); err != nil {
		t.Fatalf("same id in another scope: %v", err)
	}
	later := exp.Add(time.Second)
	if err := b.Scope("ci").UseFor("", "token-1", later.Add(time.Minute), later); err != nil {
		t.Fatalf("expired id used again: %v", err)
	}
	if err := a.Scope("ci").UseFor("", "token-1", later.Add(time.Minute), later); !errors.Is(err, wimse.ErrReplay) {
		t.Fatalf("id re-recorded on b, then used on a: %v, want ErrReplay", err)
	}
	if err := a.Scope("ci").UseFor("", "", exp, now); !errors.Is(err, wimse.ErrMalformed) {
		t.Fatalf("empty id: %v, want ErrMalformed", err)
	}
	a.sweep(later.Add(2 * time.Minute))
	var n int
	if err := a.db.QueryRow(`SELECT COUNT(*) FROM tf_replay`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after a sweep past every expiry: %d rows, %v; want 0", n, err)
	}

	b.db.Close()
	err = b.Scope("ci").UseFor("", "token-2", exp, now)
	if !errors.Is(err, wimse.ErrReplayUnavailable) {
		t.Fatalf("database closed: %v, want ErrReplayUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "tcp(") {
		t.Fatalf("error names the database: %q", msg)
	}
}
