package posix

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// RepairReport is what [Repair] found and did.
type RepairReport struct {
	// Dir is the data directory.
	Dir string
	// LogSize is the number of entries in the log.
	LogSize uint64
	// Restored counts log entries whose statement was recovered intact.
	Restored int
	// Pending counts statements stored but not in the log; the service
	// appends them at its next start.
	Pending int
	// Lost lists the log entries whose statement could not be recovered.
	// Their receipts cannot be issued until someone registers the same
	// statement again, which restores it at its old index.
	Lost []LostEntry
	// Damaged lists the byte ranges of the old statement store that held no
	// intact record and were dropped.
	Damaged []ByteRange
	// Backup is where the old statement store was kept ("" if there was
	// none).
	Backup string
}

// LostEntry is a log entry whose statement is lost.
type LostEntry struct {
	Entry storage.Entry
	Index uint64
}

// ByteRange is a range of a file.
type ByteRange struct {
	Offset, Length int64
}

// putRef locates an intact put record in the old statement store.
type putRef struct {
	off        int64 // of the statement bytes
	size       int64
	registered uint64
}

// Repair rebuilds the statement store of the data directory dir from what
// survives of it and from the log, which holds the 32-byte entry of every
// registered statement: every intact statement is kept, with its index taken
// from the log; statements not in the log stay pending (the service appends
// them at start); log entries with no intact statement are recorded as lost
// and listed in the report. The old store is kept next to the new one as
// statements.damaged-<UTC time>.
//
// Repair takes the directory's lock (an error wrapping [storage.ErrLocked] if
// a server holds it). It does not repair the log: when the log is shorter
// than the indices the statement store recorded (the log was deleted or
// rolled back), it refuses with an error wrapping [storage.ErrCorrupt];
// restore the log directory from a backup first.
func Repair(ctx context.Context, dir string) (_ *RepairReport, err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, lock.release()) }()
	rep := &RepairReport{Dir: dir}
	path := filepath.Join(dir, "statements")

	// 1. Every intact record of the old store, wherever it is.
	puts := map[storage.Entry]putRef{}
	var order []storage.Entry
	var maxIndex uint64
	old, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("repair: %w", err)
	default:
		defer old.Close()
		fi, err := old.Stat()
		if err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
		size := fi.Size()
		var buf []byte
		for off := int64(0); off < size; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			p, bad, err := readFrame(old, off, size, &buf)
			if err != nil {
				return nil, fmt.Errorf("repair: %w", err)
			}
			if bad != nil {
				next, err := nextFrame(old, off+1, size)
				if err != nil {
					return nil, fmt.Errorf("repair: %w", err)
				}
				if next < 0 {
					next = size
				}
				rep.Damaged = append(rep.Damaged, ByteRange{Offset: off, Length: next - off})
				off = next
				continue
			}
			var e storage.Entry
			copy(e[:], p[1:])
			switch p[0] {
			case recPut:
				if _, ok := puts[e]; !ok {
					puts[e] = putRef{off: off + frameHeader + putHeader, size: int64(len(p) - putHeader),
						registered: binary.BigEndian.Uint64(p[1+storage.EntrySize:])}
					order = append(order, e)
				}
			case recIndex, recLost:
				maxIndex = max(maxIndex, binary.BigEndian.Uint64(p[1+storage.EntrySize:])+1)
			}
			off += frameHeader + int64(len(p))
		}
	}

	// 2. The log's entries, in order.
	logDir := filepath.Join(dir, "log")
	entries, err := readLogEntries(ctx, logDir)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	rep.LogSize = uint64(len(entries))
	if maxIndex > rep.LogSize {
		return nil, fmt.Errorf("%w: statement store %s recorded log index %d but the log in %s holds only %d entries; restore the log directory from a backup (repair does not rebuild a log)",
			storage.ErrCorrupt, path, maxIndex-1, logDir, rep.LogSize)
	}

	// 3. The new store: log order first, then the pending statements.
	tmp := path + ".repair"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	defer func() {
		if nf != nil {
			nf.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(nf, 1<<20)
	inLog := make(map[storage.Entry]bool, len(entries))
	writePut := func(e storage.Entry, ref putRef) error {
		p := make([]byte, putHeader+ref.size)
		p[0] = recPut
		copy(p[1:], e[:])
		binary.BigEndian.PutUint64(p[1+storage.EntrySize:], ref.registered)
		if _, err := old.ReadAt(p[putHeader:], ref.off); err != nil {
			return fmt.Errorf("read statement: %w", err)
		}
		_, err := w.Write(frame(p))
		return err
	}
	for i, e := range entries {
		if inLog[e] {
			continue // the same entry twice in the log: the first index is its index
		}
		inLog[e] = true
		typ := byte(recLost)
		if ref, ok := puts[e]; ok {
			if err := writePut(e, ref); err != nil {
				return nil, fmt.Errorf("repair: %w", err)
			}
			typ = recIndex
			rep.Restored++
		} else {
			rep.Lost = append(rep.Lost, LostEntry{Entry: e, Index: uint64(i)})
		}
		p := make([]byte, indexLen)
		p[0] = typ
		copy(p[1:], e[:])
		binary.BigEndian.PutUint64(p[1+storage.EntrySize:], uint64(i))
		if _, err := w.Write(frame(p)); err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
	}
	for _, e := range order {
		if inLog[e] {
			continue
		}
		if err := writePut(e, puts[e]); err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
		rep.Pending++
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("repair: %w", noSpace(err))
	}
	if err := nf.Sync(); err != nil {
		return nil, fmt.Errorf("repair: %w", noSpace(err))
	}
	if err := nf.Close(); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	nf = nil

	// 4. Swap, keeping the old store.
	if old != nil {
		rep.Backup = fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, rep.Backup); err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("repair: keep the old statement store: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("repair: install the new statement store (the old one is %s): %w", rep.Backup, err)
	}
	// The entry index described the old store; the next start rebuilds it
	// (it would anyway: it no longer matches the store's size and tail).
	if err := os.Remove(path + ".index"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("repair: remove the old entry index: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	return rep, nil
}

// readLogEntries reads every integrated entry of the Tessera POSIX log in
// logDir from its files, without starting an appender (which would need the
// checkpoint key and publish checkpoints). A missing log has no entries.
func readLogEntries(ctx context.Context, logDir string) ([]storage.Entry, error) {
	raw, err := os.ReadFile(filepath.Join(logDir, ".state", "treeState"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read log state: %w", err)
	}
	var state struct {
		Size uint64 `json:"size"`
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		return nil, fmt.Errorf("parse log state %s: %w", filepath.Join(logDir, ".state", "treeState"), err)
	}
	out := make([]storage.Entry, 0, state.Size)
	for b := uint64(0); b*layout.EntryBundleWidth < state.Size; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := layout.PartialTileSize(0, b, state.Size)
		data, err := os.ReadFile(filepath.Join(logDir, layout.EntriesPath(b, p)))
		if errors.Is(err, fs.ErrNotExist) && p != 0 {
			data, err = os.ReadFile(filepath.Join(logDir, layout.EntriesPath(b, 0)))
		}
		if err != nil {
			return nil, fmt.Errorf("read log entry bundle %d: %w", b, err)
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(data); err != nil {
			return nil, fmt.Errorf("parse log entry bundle %d: %w", b, err)
		}
		want := uint64(layout.EntryBundleWidth)
		if p != 0 {
			want = uint64(p)
		}
		if uint64(len(eb.Entries)) < want {
			return nil, fmt.Errorf("log entry bundle %d holds %d entries, want %d", b, len(eb.Entries), want)
		}
		for _, d := range eb.Entries[:want] {
			if len(d) != storage.EntrySize {
				return nil, fmt.Errorf("log entry bundle %d holds an entry of %d bytes, want %d", b, len(d), storage.EntrySize)
			}
			out = append(out, storage.Entry(d))
		}
	}
	return out, nil
}
