package posix

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"slices"
	"sync"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// The entry index maps an entry to what the statement store knows about it
// (where its statement is, its registration time and log index). It lives in
// a file next to the statement store (statements.index) so that the memory of
// the service does not grow with the log: an open-addressing hash table of
// fixed-size slots, read and written with pread/pwrite (not mmap, whose pages
// would count in the process's RSS), resized by streaming it into a table
// twice the size. The first write of a registration's slot (before its log
// index is known) is held in memory until the second (writeback.go).
//
//	file = header (4096 bytes) ‖ slot × (2^bits + overflow)
//	slot = entry(32) ‖ u64 statement offset (0: lost) ‖ i64 registered (Unix ns)
//	       ‖ u64 index+1 (0: none) ‖ u32 statement size ‖ u32 CRC-32C(slot[:60])
//
// An empty slot is 64 zero bytes (its CRC field cannot match). An entry's
// home slot is the top bits of its first 8 bytes; linear probing from there,
// with no wrap-around (the overflow slots past the last home take the tail;
// a probe that runs off the end grows the table). Nothing is ever deleted.
//
// The index is derived data: the statement store file is the truth. The
// header says whether the index was closed cleanly and, if so, the size and
// the tail checksum of the statement store it describes. The service trusts
// it only then; any other state (a crash, kill -9 or power loss while it was
// open, a damaged header or slot, a statement store that changed since)
// makes the store rebuild it from the statement store at open, which is what
// the store did on every start before the index existed. So the index needs
// no fsync of its own while the service runs.

const (
	idxHeaderSize = 4096
	slotSize      = 64
	idxMagic      = "tfentix1"
	idxMinBits    = 12
	idxMaxBits    = 40
	// idxChunk is how many slots a probe reads at once.
	idxChunk = 16
	// idxStream is the buffer of a sequential scan or resize, in slots.
	idxStream = 16384
)

func overflowSlots(bits uint) uint64 { return 1<<bits>>4 + 64 }

// idxHeader is the first page of the index file.
type idxHeader struct {
	bits     uint8
	clean    bool
	count    uint64
	maxIndex uint64 // highest index+1 recorded; 0 = none
	// storeSize and storeTail identify the statement store the index was
	// closed with: its size and the CRC-32C of its last (up to) 4 KiB.
	storeSize int64
	storeTail uint32
	// key is a random key of the slot hash, chosen when the index is
	// created, so that registrants cannot aim many entries at one slot.
	key [2]uint64
}

func (h *idxHeader) marshal() []byte {
	b := make([]byte, idxHeaderSize)
	copy(b, idxMagic)
	b[8] = h.bits
	if h.clean {
		b[9] = 1
	}
	binary.BigEndian.PutUint64(b[16:], h.count)
	binary.BigEndian.PutUint64(b[24:], h.maxIndex)
	binary.BigEndian.PutUint64(b[32:], uint64(h.storeSize))
	binary.BigEndian.PutUint32(b[40:], h.storeTail)
	binary.BigEndian.PutUint64(b[48:], h.key[0])
	binary.BigEndian.PutUint64(b[56:], h.key[1])
	binary.BigEndian.PutUint32(b[64:], crc32.Checksum(b[:64], castagnoli))
	return b
}

func (h *idxHeader) unmarshal(b []byte) error {
	if len(b) < idxHeaderSize || string(b[:8]) != idxMagic {
		return errors.New("not an entry index")
	}
	if crc32.Checksum(b[:64], castagnoli) != binary.BigEndian.Uint32(b[64:]) {
		return errors.New("entry index header checksum mismatch")
	}
	h.bits, h.clean = b[8], b[9] == 1
	if h.bits < idxMinBits || h.bits > idxMaxBits {
		return fmt.Errorf("entry index of 2^%d slots", h.bits)
	}
	h.count = binary.BigEndian.Uint64(b[16:])
	h.maxIndex = binary.BigEndian.Uint64(b[24:])
	h.storeSize = int64(binary.BigEndian.Uint64(b[32:]))
	h.storeTail = binary.BigEndian.Uint32(b[40:])
	h.key = [2]uint64{binary.BigEndian.Uint64(b[48:]), binary.BigEndian.Uint64(b[56:])}
	return nil
}

func encodeSlot(b []byte, e storage.Entry, m meta) {
	copy(b, e[:])
	off := uint64(m.off)
	if m.lost {
		off = 0
	}
	binary.BigEndian.PutUint64(b[32:], off)
	binary.BigEndian.PutUint64(b[40:], uint64(m.registered))
	binary.BigEndian.PutUint64(b[48:], m.index)
	binary.BigEndian.PutUint32(b[56:], uint32(m.size))
	binary.BigEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
}

var zeroSlot [slotSize]byte

// decodeSlot returns the slot's entry and meta; empty reports an unused
// slot, err a damaged one.
func decodeSlot(b []byte) (e storage.Entry, m meta, empty bool, err error) {
	if bytes.Equal(b[:slotSize], zeroSlot[:]) {
		return e, m, true, nil
	}
	if crc32.Checksum(b[:60], castagnoli) != binary.BigEndian.Uint32(b[60:]) {
		return e, m, false, errors.New("slot checksum mismatch")
	}
	copy(e[:], b)
	off := binary.BigEndian.Uint64(b[32:])
	m = meta{off: int64(off), registered: int64(binary.BigEndian.Uint64(b[40:])),
		index: binary.BigEndian.Uint64(b[48:]), size: int32(binary.BigEndian.Uint32(b[56:])), lost: off == 0}
	return e, m, false, nil
}

// indexFile is the entry index. It is not safe for concurrent use by itself:
// the statement store calls lookup under its read lock and everything else
// under its write lock.
type indexFile struct {
	path string
	f    *os.File
	hdr  idxHeader
	// broken is set when a damaged slot was found: the index is then not
	// marked clean at close, so the next start rebuilds it.
	broken bool
	// gen counts the times the table grew (slot numbers change).
	gen uint32
	// deferred holds slots written in memory only (writeback.go).
	deferred map[uint64][slotSize]byte
}

// openIndex opens the index at path. trusted reports whether it describes
// the statement store of size storeSize and tail checksum storeTail and was
// closed cleanly; otherwise it was reset to an empty index that the caller
// fills from the statement store. Either way the header on disk is marked
// not clean until close, so that a crash from now on is detected.
func openIndex(path string, storeSize int64, storeTail uint32) (x *indexFile, trusted bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open entry index: %w", err)
	}
	x = &indexFile{path: path, f: f}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	b := make([]byte, idxHeaderSize)
	var h idxHeader
	if _, rerr := io.ReadFull(io.NewSectionReader(f, 0, idxHeaderSize), b); rerr == nil && h.unmarshal(b) == nil &&
		h.clean && h.storeSize == storeSize && h.storeTail == storeTail {
		if fi, err := f.Stat(); err == nil && fi.Size() == idxHeaderSize+int64(tableSlots(uint(h.bits)))*slotSize {
			trusted = true
		}
	}
	if !trusted {
		h = idxHeader{bits: idxMinBits}
		var k [16]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, false, fmt.Errorf("entry index key: %w", err)
		}
		h.key = [2]uint64{binary.BigEndian.Uint64(k[:]), binary.BigEndian.Uint64(k[8:])}
		if err := f.Truncate(0); err != nil {
			return nil, false, fmt.Errorf("reset entry index: %w", err)
		}
		if err := writeZeros(f, idxHeaderSize, tableSlots(idxMinBits)*slotSize); err != nil {
			return nil, false, fmt.Errorf("reset entry index: %w", noSpace(err))
		}
	}
	x.hdr = h
	x.hdr.clean = false
	if _, err := f.WriteAt(x.hdr.marshal(), 0); err != nil {
		return nil, false, fmt.Errorf("write entry index header: %w", noSpace(err))
	}
	if err := f.Sync(); err != nil {
		return nil, false, fmt.Errorf("sync entry index: %w", noSpace(err))
	}
	return x, trusted, nil
}

func tableSlots(bits uint) uint64 { return 1<<bits + overflowSlots(bits) }

func writeZeros(f io.WriterAt, off int64, n uint64) error {
	buf := make([]byte, min(n, idxStream*slotSize))
	for n > 0 {
		k := min(n, uint64(len(buf)))
		if _, err := f.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off += int64(k)
		n -= k
	}
	return nil
}

// hash is the slot hash of an entry: the first 16 bytes mixed with the
// index's key (splitmix64's finalizer). An entry's home slot at 2^bits home
// slots is the top bits of its hash, so a table twice the size keeps the
// order of homes.
func (h *idxHeader) hash(e []byte) uint64 {
	z := binary.LittleEndian.Uint64(e[:8]) ^ h.key[0]
	z ^= bits.RotateLeft64(binary.LittleEndian.Uint64(e[8:16])^h.key[1], 31)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (x *indexFile) home(e storage.Entry) uint64 {
	return x.hdr.hash(e[:]) >> (64 - x.hdr.bits)
}

// errFull: a probe ran off the end of the table (grow it).
var errFull = errors.New("entry index: probe ran off the end of the table")

// lookup returns e's meta and slot number if present, else the free slot
// where it would go (found false). errFull means there is none.
// chunkBufs holds lookup's read buffers: lookups run concurrently (under
// the store's read lock), and a buffer per call would be 1 KiB of garbage
// per registration.
var chunkBufs = sync.Pool{New: func() any { return new([idxChunk * slotSize]byte) }}

func (x *indexFile) lookup(e storage.Entry) (m meta, slot uint64, found bool, err error) {
	total := tableSlots(uint(x.hdr.bits))
	bp := chunkBufs.Get().(*[idxChunk * slotSize]byte)
	defer chunkBufs.Put(bp)
	buf := bp[:]
	for pos := x.home(e); pos < total; pos += idxChunk {
		n := min(uint64(idxChunk), total-pos)
		if _, err := x.f.ReadAt(buf[:n*slotSize], idxHeaderSize+int64(pos)*slotSize); err != nil {
			return meta{}, 0, false, fmt.Errorf("read entry index: %w", err)
		}
		for i := range n {
			b := buf[i*slotSize : (i+1)*slotSize]
			if d, ok := x.deferred[pos+i]; ok {
				copy(b, d[:])
			}
			if bytes.Equal(b, zeroSlot[:]) {
				return meta{}, pos + i, false, nil
			}
			if !bytes.Equal(b[:storage.EntrySize], e[:]) {
				continue
			}
			_, m, _, err := decodeSlot(b)
			if err != nil {
				return meta{}, 0, false, x.damaged(pos+i, err)
			}
			return m, pos + i, true, nil
		}
	}
	return meta{}, 0, false, errFull
}

func (x *indexFile) damaged(slot uint64, err error) error {
	x.broken = true
	return fmt.Errorf("%w: entry index %s: slot %d: %w (it is rebuilt from the statement store at the next start)",
		storage.ErrCorrupt, x.path, slot, err)
}

// store writes e's meta into slot (from lookup); created says the slot was
// free.
func (x *indexFile) store(slot uint64, e storage.Entry, m meta, created bool) error {
	var b [slotSize]byte
	encodeSlot(b[:], e, m)
	if err := x.write(slot, &b, m.index == 0 && !m.lost); err != nil {
		return err
	}
	if created {
		x.hdr.count++
	}
	if m.index > x.hdr.maxIndex {
		x.hdr.maxIndex = m.index
	}
	return nil
}

// put inserts or replaces e's meta, growing the table when needed.
func (x *indexFile) put(e storage.Entry, m meta) error {
	for {
		_, slot, found, err := x.lookup(e)
		if errors.Is(err, errFull) {
			if err := x.grow(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		return x.store(slot, e, m, !found)
	}
}

// reserve grows the table, if needed, so that n more entries fit under the
// load limit of 3/4. The statement store calls it before it writes a group
// commit, so that a full disk fails the commit, not the index update after
// it.
func (x *indexFile) reserve(n uint64) error {
	for x.needsGrow(n) {
		if err := x.grow(); err != nil {
			return err
		}
	}
	return nil
}

// grow replaces the table by one with twice the home slots (build, then
// install).
func (x *indexFile) grow() error {
	g, err := x.build()
	if err != nil {
		return err
	}
	return x.install(g)
}

// needsGrow reports whether n more entries would take the table past its
// load limit of 3/4.
func (x *indexFile) needsGrow(n uint64) bool { return (x.hdr.count+n)*4 > 3<<x.hdr.bits }

// grown is a table built by build, not yet installed.
type grown struct {
	f   *os.File
	tmp string
	hdr idxHeader
}

// build writes a table with twice the home slots into a new file, only
// reading this one: the statement store holds only its read lock meanwhile,
// so lookups go on. Entries are read cluster by cluster (a cluster is a run
// of used slots: every entry in it has its home inside it, so clusters come
// in the order of their entries' homes), sorted, and written in order of
// their new homes, each at its home or the slot after the previous one:
// exactly where linear probing would put them. The new table is written
// sequentially.
func (x *indexFile) build() (*grown, error) {
	bits := uint(x.hdr.bits)
	if bits >= idxMaxBits {
		return nil, errors.New("entry index: table at its maximum size")
	}
	nbits := bits + 1
	tmp := x.path + ".grow"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("grow entry index: %w", err)
	}
	fail := func(err error) (*grown, error) {
		nf.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("grow entry index: %w", noSpace(err))
	}
	nh := x.hdr
	nh.bits, nh.clean = uint8(nbits), false
	if _, err := nf.WriteAt(nh.marshal(), 0); err != nil {
		return fail(err)
	}
	ntotal := tableSlots(nbits)
	w := &slotWriter{f: nf, total: ntotal, buf: make([]byte, idxStream*slotSize)}
	var cluster [][slotSize]byte
	emit := func() error {
		slices.SortFunc(cluster, func(a, b [slotSize]byte) int { return cmp.Compare(nh.hash(a[:]), nh.hash(b[:])) })
		for _, s := range cluster {
			h := nh.hash(s[:]) >> (64 - nbits)
			if err := w.place(h, s[:]); err != nil {
				return err
			}
		}
		cluster = cluster[:0]
		return nil
	}
	err = x.scan(func(slot uint64, b []byte) error {
		if b == nil {
			return emit()
		}
		cluster = append(cluster, [slotSize]byte(b))
		return nil
	})
	if err == nil {
		err = emit()
	}
	if err == nil {
		err = w.finish()
	}
	if err != nil {
		return fail(err)
	}
	return &grown{f: nf, tmp: tmp, hdr: nh}, nil
}

// install puts a table from build in place of this one, which must not
// have changed since (the statement store holds its write lock).
func (x *indexFile) install(g *grown) error {
	if err := os.Rename(g.tmp, x.path); err != nil {
		g.f.Close()
		os.Remove(g.tmp)
		return fmt.Errorf("grow entry index: %w", err)
	}
	x.f.Close()
	x.f, x.hdr = g.f, g.hdr
	x.gen = (x.gen + 1) % staleSlot
	// build wrote the deferred slots too (scan shows them), at their
	// places in the new table.
	x.deferred = nil
	return nil
}

// scan calls fn for every slot in order: b is the slot's bytes (valid during
// the call), nil for an empty slot. A damaged slot stops it with an error.
func (x *indexFile) scan(fn func(slot uint64, b []byte) error) error {
	total := tableSlots(uint(x.hdr.bits))
	buf := make([]byte, idxStream*slotSize)
	for pos := uint64(0); pos < total; pos += idxStream {
		n := min(uint64(idxStream), total-pos)
		if _, err := x.f.ReadAt(buf[:n*slotSize], idxHeaderSize+int64(pos)*slotSize); err != nil {
			return fmt.Errorf("read entry index: %w", err)
		}
		x.overlay(buf[:n*slotSize], pos)
		for i := range n {
			b := buf[i*slotSize : (i+1)*slotSize]
			if bytes.Equal(b, zeroSlot[:]) {
				b = nil
			} else if crc32.Checksum(b[:60], castagnoli) != binary.BigEndian.Uint32(b[60:]) {
				return x.damaged(pos+i, errors.New("slot checksum mismatch"))
			}
			if err := fn(pos+i, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// verify reads the whole table and checks every slot's checksum and that
// the header's count and highest index agree with the slots. A clean index
// is verified before it is trusted: damage that a checksum cannot show (a
// zeroed slot) still changes the count.
func (x *indexFile) verify() error {
	var n, maxIndex uint64
	err := x.each(func(_ storage.Entry, m meta) {
		n++
		maxIndex = max(maxIndex, m.index)
	})
	if err != nil {
		return err
	}
	if n != x.hdr.count || maxIndex != x.hdr.maxIndex {
		x.broken = true
		return fmt.Errorf("%w: entry index %s: %d entries with highest index+1 %d, its header says %d and %d",
			storage.ErrCorrupt, x.path, n, maxIndex, x.hdr.count, x.hdr.maxIndex)
	}
	return nil
}

// each calls fn for every entry in the index, in slot order.
func (x *indexFile) each(fn func(e storage.Entry, m meta)) error {
	return x.scan(func(_ uint64, b []byte) error {
		if b != nil {
			e, m, _, _ := decodeSlot(b)
			fn(e, m)
		}
		return nil
	})
}

// slotWriter writes a table sequentially: slots placed in increasing
// order, zeros in between.
type slotWriter struct {
	f     io.WriterAt
	total uint64
	buf   []byte
	base  uint64 // first slot in buf
	next  uint64 // first slot not yet taken
}

func (w *slotWriter) place(home uint64, b []byte) error {
	pos := max(home, w.next)
	if pos >= w.total {
		return errFull
	}
	per := uint64(len(w.buf) / slotSize)
	for pos >= w.base+per {
		if err := w.flush(per); err != nil {
			return err
		}
	}
	copy(w.buf[(pos-w.base)*slotSize:], b)
	w.next = pos + 1
	return nil
}

// flush writes n slots of the buffer and moves it on.
func (w *slotWriter) flush(n uint64) error {
	n = min(n, w.total-w.base)
	if _, err := w.f.WriteAt(w.buf[:n*slotSize], idxHeaderSize+int64(w.base)*slotSize); err != nil {
		return err
	}
	clear(w.buf)
	w.base += n
	return nil
}

func (w *slotWriter) finish() error {
	per := uint64(len(w.buf) / slotSize)
	for w.base < w.total {
		if err := w.flush(per); err != nil {
			return err
		}
	}
	return nil
}

// close marks the index clean for the statement store of the given size
// and tail checksum, and closes it. The slots are synced before the header
// that vouches for them.
func (x *indexFile) close(storeSize int64, storeTail uint32, clean bool) error {
	err := x.flushDeferred()
	if err == nil {
		err = x.f.Sync()
	}
	if err == nil && clean && !x.broken {
		h := x.hdr
		h.clean, h.storeSize, h.storeTail = true, storeSize, storeTail
		if _, err = x.f.WriteAt(h.marshal(), 0); err == nil {
			err = x.f.Sync()
		}
	}
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close entry index: %w", noSpace(err))
	}
	return nil
}

// storeTail returns the CRC-32C of the last (up to) 4 KiB of the first size
// bytes of r.
func storeTailCRC(r io.ReaderAt, size int64) (uint32, error) {
	n := min(size, 4096)
	b := make([]byte, n)
	if _, err := r.ReadAt(b, size-n); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read statement store: %w", err)
	}
	return crc32.Checksum(b, castagnoli), nil
}
