package posix

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// faultFile is a storeFile that remembers the size at the last successful
// Sync (what survives a power loss: writes after it are dropped) and can be
// told to fail writes the way a full disk does (part of the bytes written,
// then ENOSPC).
type faultFile struct {
	*os.File
	mu     sync.Mutex
	synced int64
	full   bool
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	full := f.full
	f.mu.Unlock()
	if full {
		n, err := f.File.WriteAt(b[:len(b)/2], off)
		if err != nil {
			return n, err
		}
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(b, off)
}

func (f *faultFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.synced = fi.Size()
	f.mu.Unlock()
	return nil
}

// powerLoss drops every write after the last sync.
func (f *faultFile) powerLoss(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.File.Truncate(f.synced); err != nil {
		t.Fatal(err)
	}
}

func openFault(t *testing.T, path string) (*statementFile, *faultFile) {
	t.Helper()
	osf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ff := &faultFile{File: osf}
	if fi, err := osf.Stat(); err == nil {
		ff.synced = fi.Size()
	}
	s, err := newStatementFile(path, ff, options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, ff
}

// stopWithoutSync stops the writer without the final sync of Close, as a
// crash does.
func (s *statementFile) stopWithoutSync() {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	close(s.quit)
	s.wg.Wait()
}

// TestPowerLossKeepsAcknowledgedPuts: every Put that returned survives a
// power loss that drops all unsynced writes (the index records, written
// without their own fsync, may go: the service rebuilds them from the log).
func TestPowerLossKeepsAcknowledgedPuts(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "statements")
	s, ff := openFault(t, path)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := sha256.Sum256(fmt.Appendf(nil, "%d", i))
			if _, _, err := s.Put(ctx, e, fmt.Appendf(nil, "statement %d", i), time.Now()); err != nil {
				t.Error(err)
				return
			}
			if err := s.SetIndex(ctx, e, uint64(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The last index records ride on no later sync.
	s.stopWithoutSync()
	fi, _ := ff.Stat()
	ff.powerLoss(t)
	after, _ := ff.Stat()
	ff.File.Close()
	if after.Size() >= fi.Size() {
		t.Fatalf("the power loss dropped nothing (%d bytes synced of %d); the test does not test", after.Size(), fi.Size())
	}
	st, err := openStatements(path, options{})
	if err != nil {
		t.Fatalf("open after power loss: %v", err)
	}
	defer st.Close()
	for i := range n {
		e := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		got, err := st.Statement(ctx, e)
		if err != nil || string(got) != fmt.Sprintf("statement %d", i) {
			t.Fatalf("acknowledged statement %d after power loss = %q, %v", i, got, err)
		}
	}
}

// TestFullDiskWriteIsUndone: a group commit that fails half-written (ENOSPC)
// returns ErrNoSpace to its writers, leaves nothing behind, and the store
// keeps working and reopens cleanly once space is back. Before, the partial
// write stayed after the next, shorter commit and read as damage.
func TestFullDiskWriteIsUndone(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "statements")
	s, ff := openFault(t, path)
	a, b, c := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b")), sha256.Sum256([]byte("c"))
	if _, _, err := s.Put(ctx, a, []byte("statement a"), time.Now()); err != nil {
		t.Fatal(err)
	}
	good, _ := ff.Stat()
	ff.mu.Lock()
	ff.full = true
	ff.mu.Unlock()
	_, _, err := s.Put(ctx, b, make([]byte, 4096), time.Now())
	if !errors.Is(err, storage.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: error = %v, want ErrNoSpace", err)
	}
	if _, err := s.Get(ctx, b); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a failed Put left a record: %v", err)
	}
	if fi, _ := ff.Stat(); fi.Size() != good.Size() {
		t.Fatalf("a failed write left %d bytes behind", fi.Size()-good.Size())
	}
	ff.mu.Lock()
	ff.full = false
	ff.mu.Unlock()
	if _, _, err := s.Put(ctx, c, []byte("statement c"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := openStatements(path, options{})
	if err != nil {
		t.Fatalf("reopen after a full disk: %v", err)
	}
	defer st.Close()
	for e, want := range map[storage.Entry]string{a: "statement a", c: "statement c"} {
		if got, err := st.Statement(ctx, e); err != nil || string(got) != want {
			t.Fatalf("statement after reopen = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := st.Get(ctx, b); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("failed Put present after reopen: %v", err)
	}
}
