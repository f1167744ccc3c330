package posix_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/storagetest"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Run(t, func(ctx context.Context) (storage.Log, storage.Statements, error) {
		lg, st, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: signer})
		if err != nil {
			return nil, nil, err
		}
		return lg, st, nil
	}, "test.example/log")
}

// TestStatementsTornTail checks that a record cut short by a crash is dropped
// at open, earlier records survive and new records append cleanly.
func TestStatementsTornTail(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "statements")
	st, err := posix.OpenStatements(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	now := time.Now()
	if _, _, err := st.Put(ctx, a, []byte("statement a"), now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Put(ctx, b, []byte("statement b"), now); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	st, err = posix.OpenStatements(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, a); err != nil {
		t.Fatalf("intact record lost: %v", err)
	}
	if _, err := st.Get(ctx, b); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("torn record: error = %v, want ErrNotFound", err)
	}
	if _, _, err := st.Put(ctx, b, []byte("statement b"), now); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = posix.OpenStatements(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Statement(ctx, b)
	if err != nil || string(got) != "statement b" {
		t.Fatalf("re-put record after torn tail = %q, %v", got, err)
	}
}

func FuzzOpenStatements(f *testing.F) {
	// Seed with a valid store file.
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	st, err := posix.OpenStatements(path)
	if err != nil {
		f.Fatal(err)
	}
	e := sha256.Sum256([]byte("x"))
	st.Put(context.Background(), e, []byte("statement"), time.Unix(1, 0))
	st.SetIndex(context.Background(), e, 7)
	st.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte{0, 0, 0, 41, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "s")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := posix.OpenStatements(p)
		if err != nil {
			return
		}
		defer st.Close()
		un, _ := st.Unindexed(context.Background())
		for _, e := range un {
			if _, err := st.Statement(context.Background(), e); err != nil {
				t.Fatalf("listed entry unreadable: %v", err)
			}
		}
	})
}

// FuzzRepair feeds arbitrary bytes to Repair as the statement store of a
// directory with an empty log: it must not panic, and whatever it writes
// must open cleanly with every salvaged statement readable.
func FuzzRepair(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	st, err := posix.OpenStatements(path)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		e := sha256.Sum256([]byte{byte(i)})
		st.Put(context.Background(), e, []byte("statement"), time.Unix(1, 0))
	}
	st.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	damaged := append([]byte(nil), seed...)
	damaged[len(damaged)/2] ^= 1
	f.Add(damaged)
	f.Add(append(append([]byte(nil), seed...), 0, 0, 0, 41))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "statements"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := posix.Repair(context.Background(), d)
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("repair: %v", err)
			}
			return // index records but no log: refused
		}
		if rep.LogSize != 0 || rep.Restored != 0 || len(rep.Lost) != 0 {
			t.Fatalf("report with an empty log = %+v", rep)
		}
		st, err := posix.OpenStatements(filepath.Join(d, "statements"))
		if err != nil {
			t.Fatalf("open the repaired store: %v", err)
		}
		defer st.Close()
		un, _ := st.Unindexed(context.Background())
		if len(un) != rep.Pending {
			t.Fatalf("repaired store has %d statements, report says %d", len(un), rep.Pending)
		}
		for _, e := range un {
			if _, err := st.Statement(context.Background(), e); err != nil {
				t.Fatalf("salvaged statement unreadable: %v", err)
			}
		}
	})
}
