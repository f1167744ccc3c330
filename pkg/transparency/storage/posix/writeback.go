package posix

import (
	"fmt"
	"maps"
	"slices"
)

// A registration changes its entry's index slot twice: when its statement
// is stored (no log index yet) and when the log appended it, a few hundred
// milliseconds later. The first write is held in memory (deferred) and only
// the second reaches the file: one pwrite per registration instead of two
// (each ≈ 5 µs of server CPU, most of it the file system's bookkeeping).
// Lookups and scans see deferred slots as if they were in the file; they are
// written out when there are maxDeferred of them (a log that stopped
// appending), before the index is closed, and as part of a bigger table
// when it grows. Losing them in a crash loses nothing: the index is derived
// data, rebuilt from the statement store after any unclean stop.

// maxDeferred bounds the deferred slots (≈ 1.5 MB with the map's overhead);
// at 5,000 registrations/s a registration waits for the log ≈ 0.1-0.5 s, so
// about 500-2,500 are held.
const maxDeferred = 16384

// write writes slot b, or defers it when later is set (the entry has no
// log index yet); a slot written for good drops its deferred copy.
func (x *indexFile) write(slot uint64, b *[slotSize]byte, later bool) error {
	if later {
		if x.deferred == nil {
			x.deferred = make(map[uint64][slotSize]byte)
		}
		x.deferred[slot] = *b
		if len(x.deferred) >= maxDeferred {
			return x.flushDeferred()
		}
		return nil
	}
	return x.writeSlot(slot, b)
}

// writeSlot writes slot b to the file and drops its deferred copy.
func (x *indexFile) writeSlot(slot uint64, b *[slotSize]byte) error {
	if _, err := x.f.WriteAt(b[:], idxHeaderSize+int64(slot)*slotSize); err != nil {
		return fmt.Errorf("write entry index: %w", noSpace(err))
	}
	delete(x.deferred, slot)
	return nil
}

// flushDeferred writes every deferred slot to the file, in slot order.
func (x *indexFile) flushDeferred() error {
	for _, slot := range slices.Sorted(maps.Keys(x.deferred)) {
		b := x.deferred[slot]
		if err := x.writeSlot(slot, &b); err != nil {
			return err
		}
	}
	return nil
}

// overlay copies the deferred slots among those buf holds (read from the
// file from slot pos on) over their bytes from the file.
func (x *indexFile) overlay(buf []byte, pos uint64) {
	end := pos + uint64(len(buf)/slotSize)
	for slot, b := range x.deferred {
		if slot >= pos && slot < end {
			copy(buf[(slot-pos)*slotSize:], b[:])
		}
	}
}
