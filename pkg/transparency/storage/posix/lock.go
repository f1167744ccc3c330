package posix

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// lockName is the lock file in the data directory. The lock is an flock(2)
// on it, so the kernel releases it when the holder exits, however it exits;
// the file itself stays and holds the holder's process id for the message.
const lockName = "lock"

// dirLock is the exclusive lock on a data directory, released when every
// holder released it.
type dirLock struct {
	mu    sync.Mutex
	f     *os.File
	holds int
}

// lockDir takes the exclusive lock on dir, or fails at once with an error
// wrapping storage.ErrLocked.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := ""
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = fmt.Sprintf(" (process %d)", pid)
				}
			}
			return nil, fmt.Errorf("data directory %s: %w: another process%s holds %s; stop it, or give this one another --data directory",
				dir, storage.ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// Best effort: the pid only improves the message of a second process.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f, holds: 1}, nil
}

// hold sets the number of release calls that free the lock.
func (l *dirLock) hold(n int) {
	l.mu.Lock()
	l.holds = n
	l.mu.Unlock()
}

// release drops one hold; the last one unlocks.
func (l *dirLock) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holds == 0 {
		return nil
	}
	l.holds--
	if l.holds > 0 {
		return nil
	}
	// Closing the descriptor releases the flock.
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("release data directory lock: %w", err)
	}
	return nil
}
