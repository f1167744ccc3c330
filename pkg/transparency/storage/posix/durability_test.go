package posix_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

func testSigner(t *testing.T) note.Signer {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func stmtEntry(i int) storage.Entry { return sha256.Sum256(fmt.Appendf(nil, "statement %d", i)) }
func stmtBody(i int) []byte         { return fmt.Appendf(nil, "statement body %d %0200d", i, i) }

// fillBackend opens a backend in dir, stores and appends n statements, and
// closes it. It returns the log index of each.
func fillBackend(t *testing.T, dir string, signer note.Signer, n int) []uint64 {
	t.Helper()
	ctx := t.Context()
	lg, st, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: signer, BatchMaxAge: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]uint64, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			if _, _, err := st.Put(ctx, stmtEntry(i), stmtBody(i), time.Unix(int64(i), 0)); err != nil {
				errs <- err
				return
			}
			x, err := lg.Append(ctx, stmtEntry(i))
			if err == nil {
				idx[i] = x
				err = st.SetIndex(ctx, stmtEntry(i), x)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// recordOffsets returns the byte offset of every record of a statement
// store file (format in statements.go).
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := 0; off+8 <= len(b); {
		offs = append(offs, int64(off))
		off += 8 + int(uint32(b[off])<<24|uint32(b[off+1])<<16|uint32(b[off+2])<<8|uint32(b[off+3]))
	}
	return offs
}

// recordAt returns the offset of the record holding byte pos.
func recordAt(offs []int64, pos int64) int64 {
	at := offs[0]
	for _, o := range offs {
		if o > pos {
			break
		}
		at = o
	}
	return at
}

func flipBit(t *testing.T, path string, pos int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[pos] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRecordRefusesToOpen flips one bit at 10 % of the statement
// store. Before: the store was cut at that record (90 % of the entries gone,
// no message). Now: Open refuses with the file and offset, leaves the file
// alone, and Repair rebuilds every statement except the damaged one.
func TestCorruptRecordRefusesToOpen(t *testing.T) {
	dir, signer := t.TempDir(), testSigner(t)
	const n = 300
	indices := fillBackend(t, dir, signer, n)
	path := filepath.Join(dir, "statements")
	before, _ := os.Stat(path)
	offs := recordOffsets(t, path)
	pos := before.Size() / 10
	flipBit(t, path, pos)

	_, _, err := posix.Open(t.Context(), posix.Config{Dir: dir, Signer: signer})
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("Open on a store with a flipped bit: error = %v, want ErrCorrupt", err)
	}
	var ce *posix.CorruptError
	if !errors.As(err, &ce) || ce.Path != path || ce.Offset != recordAt(offs, pos) || ce.Next < 0 {
		t.Fatalf("error = %#v, want a CorruptError naming %s at offset %d with intact records after it", ce, path, recordAt(offs, pos))
	}
	if after, _ := os.Stat(path); after.Size() != before.Size() {
		t.Fatalf("a refused open changed the store: %d bytes, was %d", after.Size(), before.Size())
	}

	rep, err := posix.Repair(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LogSize != n || len(rep.Damaged) != 1 || rep.Damaged[0].Offset != ce.Offset || rep.Backup == "" {
		t.Fatalf("repair report = %+v", rep)
	}
	lost := map[storage.Entry]uint64{}
	for _, l := range rep.Lost {
		lost[l.Entry] = l.Index
	}
	// The damaged record was a put (statement lost) or an index record
	// (nothing lost: the index comes from the log).
	if rep.Restored+len(rep.Lost) != n || len(rep.Lost) > 1 {
		t.Fatalf("restored %d + lost %d, want %d with at most one lost", rep.Restored, len(rep.Lost), n)
	}
	lg, st, err := posix.Open(t.Context(), posix.Config{Dir: dir, Signer: signer})
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	defer func() { st.Close(); lg.Close(context.Background()) }()
	for i := range n {
		e := stmtEntry(i)
		rec, err := st.Get(t.Context(), e)
		if err != nil || !rec.Indexed || rec.Index != indices[i] {
			t.Fatalf("entry %d after repair = %+v, %v; want index %d", i, rec, err, indices[i])
		}
		if li, ok := lost[e]; ok {
			if !rec.Lost || li != indices[i] {
				t.Fatalf("lost entry %d: record %+v, report index %d", i, rec, li)
			}
			if _, err := st.Statement(t.Context(), e); !errors.Is(err, storage.ErrLost) {
				t.Fatalf("Statement(lost) error = %v, want ErrLost", err)
			}
			// Registering it again restores the bytes at the old index.
			rec, created, err := st.Put(t.Context(), e, stmtBody(i), time.Now())
			if err != nil || !created || !rec.Indexed || rec.Index != indices[i] || rec.Lost {
				t.Fatalf("re-put of a lost entry = %+v, %v, %v", rec, created, err)
			}
		}
		if got, err := st.Statement(t.Context(), e); err != nil || string(got) != string(stmtBody(i)) {
			t.Fatalf("statement %d after repair = %q, %v", i, got, err)
		}
	}
}

// TestDamagedLastRecordRefuses: a complete last record with a bad checksum
// was written whole, so it may have been acknowledged: not a torn tail.
func TestDamagedLastRecordRefuses(t *testing.T) {
	dir, signer := t.TempDir(), testSigner(t)
	fillBackend(t, dir, signer, 5)
	path := filepath.Join(dir, "statements")
	fi, _ := os.Stat(path)
	flipBit(t, path, fi.Size()-2)
	_, err := posix.OpenStatements(path)
	var ce *posix.CorruptError
	if !errors.Is(err, storage.ErrCorrupt) || !errors.As(err, &ce) || ce.Next != -1 {
		t.Fatalf("open with a damaged last record: %v, want a CorruptError with no intact record after it", err)
	}
}

// TestTornTails: the shapes a crash leaves at the end of the file are cut.
func TestTornTails(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"header cut short", []byte{0, 0, 0}},
		{"record runs past the end", []byte{0, 0, 0, 100, 1, 2, 3, 4, 1, 5, 5}},
		{"zero-filled extent", make([]byte, 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "statements")
			st, err := posix.OpenStatements(path)
			if err != nil {
				t.Fatal(err)
			}
			e := stmtEntry(1)
			if _, _, err := st.Put(t.Context(), e, stmtBody(1), time.Now()); err != nil {
				t.Fatal(err)
			}
			st.Close()
			intact, _ := os.Stat(path)
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(tc.tail)
			f.Close()
			st, err = posix.OpenStatements(path)
			if err != nil {
				t.Fatalf("open with a torn tail: %v", err)
			}
			defer st.Close()
			if got, err := st.Statement(t.Context(), e); err != nil || string(got) != string(stmtBody(1)) {
				t.Fatalf("intact record = %q, %v", got, err)
			}
			if fi, _ := os.Stat(path); fi.Size() != intact.Size() {
				t.Fatalf("size after open = %d, want the tail cut to %d", fi.Size(), intact.Size())
			}
		})
	}
}

// TestOpenLocked: a second Open of a data directory fails while the first
// holds it, and works once it is closed.
func TestOpenLocked(t *testing.T) {
	dir, signer := t.TempDir(), testSigner(t)
	ctx := t.Context()
	lg, st, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: signer}); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("second Open: error = %v, want ErrLocked", err)
	}
	if _, err := posix.Repair(ctx, dir); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("Repair while open: error = %v, want ErrLocked", err)
	}
	// Half closed is still held: the statement store may still be syncing.
	lg.Close(ctx)
	if _, _, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: signer}); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("Open with the store still open: error = %v, want ErrLocked", err)
	}
	st.Close()
	lg, st, err = posix.Open(ctx, posix.Config{Dir: dir, Signer: signer})
	if err != nil {
		t.Fatalf("Open after close: %v", err)
	}
	st.Close()
	lg.Close(ctx)
}

// TestMissingStateRefuses: a statement store missing, empty or truncated
// next to a non-empty log, and a log deleted under a store with indices,
// refuse to open; Repair lists what is lost or refuses to invent a log.
func TestMissingStateRefuses(t *testing.T) {
	signer := testSigner(t)
	const n = 40
	for _, tc := range []struct {
		name      string
		damage    func(dir string) error
		repairErr error // nil: repair works
		lost      int
	}{
		{"statements deleted", func(dir string) error { return os.Remove(filepath.Join(dir, "statements")) }, nil, n},
		{"statements empty", func(dir string) error { return os.Truncate(filepath.Join(dir, "statements"), 0) }, nil, n},
		{"statements truncated at a record boundary", func(dir string) error {
			offs := recordOffsets(t, filepath.Join(dir, "statements"))
			return os.Truncate(filepath.Join(dir, "statements"), offs[n/4]) // at most n/4 puts left
		}, nil, -1},
		{"log deleted", func(dir string) error { return os.RemoveAll(filepath.Join(dir, "log")) }, storage.ErrCorrupt, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fillBackend(t, dir, signer, n)
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, _, err := posix.Open(t.Context(), posix.Config{Dir: dir, Signer: signer})
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("Open: error = %v, want ErrCorrupt", err)
			}
			rep, err := posix.Repair(t.Context(), dir)
			if tc.repairErr != nil {
				if !errors.Is(err, tc.repairErr) {
					t.Fatalf("Repair: error = %v, want %v", err, tc.repairErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc.lost >= 0 && len(rep.Lost) != tc.lost) || len(rep.Lost) == 0 || rep.Restored+len(rep.Lost) != n {
				t.Fatalf("repair: restored %d, lost %d; want %d lost of %d", rep.Restored, len(rep.Lost), tc.lost, n)
			}
			lg, st, err := posix.Open(t.Context(), posix.Config{Dir: dir, Signer: signer})
			if err != nil {
				t.Fatalf("open after repair: %v", err)
			}
			st.Close()
			lg.Close(context.Background())
		})
	}
}
