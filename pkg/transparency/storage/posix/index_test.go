package posix

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

func testEntry(i int) storage.Entry { return sha256.Sum256(fmt.Appendf(nil, "entry %d", i)) }

// logBuffer collects a store's logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func openLogged(t *testing.T, path string) (*statementFile, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	s, err := openStatements(path, options{logger: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, lb
}

// fill puts n statements, indexing the even ones.
func fill(t *testing.T, s *statementFile, from, n int) {
	t.Helper()
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := from; i < from+n; i++ {
		wg.Go(func() {
			e := testEntry(i)
			if _, _, err := s.Put(ctx, e, fmt.Appendf(nil, "statement %d", i), time.Unix(int64(i), 0)); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				if err := s.SetIndex(ctx, e, uint64(i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// check asserts that the store holds statements [0, n) as fill left them.
func check(t *testing.T, s *statementFile, n int) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		e := testEntry(i)
		rec, err := s.Get(ctx, e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if rec.Indexed != (i%2 == 0) || (rec.Indexed && rec.Index != uint64(i)) || !rec.Registered.Equal(time.Unix(int64(i), 0)) {
			t.Fatalf("entry %d: record %+v", i, rec)
		}
		got, err := s.Statement(ctx, e)
		if err != nil || string(got) != fmt.Sprintf("statement %d", i) {
			t.Fatalf("entry %d: statement %q, %v", i, got, err)
		}
	}
	un, err := s.Unindexed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != n/2 {
		t.Fatalf("Unindexed: %d entries, want %d", len(un), n/2)
	}
	if _, err := s.Get(ctx, testEntry(n+1)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown entry: %v, want ErrNotFound", err)
	}
}

const rebuiltMsg = "entry index rebuilt"

// TestIndexRestart: after a clean close the index is trusted as it is (no
// rebuild), and everything the store knew is found again, past several
// resizes of the table.
func TestIndexRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statements")
	s, _ := openLogged(t, path)
	const n = 9000 // > 3/4 of 2^12 and of 2^13 home slots: two resizes
	fill(t, s, 0, n)
	if bits := s.idx.hdr.bits; bits <= idxMinBits {
		t.Fatalf("table did not grow: 2^%d slots for %d entries", bits, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, lb := openLogged(t, path)
	defer s.Close()
	if strings.Contains(lb.String(), rebuiltMsg) {
		t.Fatalf("a cleanly closed index was rebuilt: %s", lb)
	}
	check(t, s, n)
	if max, any := s.maxIndexed(); max != n-1 || !any {
		t.Fatalf("maxIndexed = %d, %v", max, any)
	}
}

// TestIndexKillMidWrite: a store stopped as kill -9 stops it (no close: the
// index header still says "not clean") rebuilds its index from the
// statement store at the next open; acknowledged entries and their indices
// are all there. A power loss that also drops the store's unsynced index
// records (TestPowerLossKeepsAcknowledgedPuts) takes the same path.
func TestIndexKillMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statements")
	s, _ := openLogged(t, path)
	fill(t, s, 0, 3000)
	s.stopWithoutSync()
	s.f.Close()
	s.idx.f.Close()

	s, lb := openLogged(t, path)
	defer s.Close()
	if !strings.Contains(lb.String(), rebuiltMsg) {
		t.Fatalf("index of a killed store not rebuilt; log: %s", lb)
	}
	check(t, s, 3000)
}

// TestIndexDamage: a cleanly closed index that was damaged afterwards (a
// torn or flipped slot, a zeroed slot, a damaged header) or that no longer
// describes the statement store (restored from an older copy) is rebuilt
// at open, not trusted.
func TestIndexDamage(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"torn slot", func(t *testing.T, path string) { damageSlot(t, path, func(b []byte) { b[40] ^= 0x10 }) }},
		{"zeroed slot", func(t *testing.T, path string) { damageSlot(t, path, func(b []byte) { clear(b) }) }},
		{"damaged header", func(t *testing.T, path string) { writeAt(t, path+".index", 20, []byte{0xff}) }},
		{"torn header", func(t *testing.T, path string) {
			if err := os.Truncate(path+".index", 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"index deleted", func(t *testing.T, path string) {
			if err := os.Remove(path + ".index"); err != nil {
				t.Fatal(err)
			}
		}},
		{"store changed", func(t *testing.T, path string) {
			// Same size, other bytes in the last record: the tail checksum
			// no longer matches.
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeAt(t, path, fi.Size()-1, []byte{b[len(b)-1] ^ 1})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "statements")
			s, _ := openLogged(t, path)
			fill(t, s, 0, n)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path)
			lb := &logBuffer{}
			s, err := openStatements(path, options{logger: slog.New(slog.NewTextHandler(lb, nil))})
			if tc.name == "store changed" {
				// The flipped byte is in the last record of the store: a
				// complete record with a bad checksum refuses to open (the
				// index did not hide it).
				if !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("open of a changed store: %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !strings.Contains(lb.String(), rebuiltMsg) {
				t.Fatalf("damaged index not rebuilt; log: %s", lb)
			}
			check(t, s, n)
		})
	}
}

// TestIndexOlderStore: a statement store restored from an older copy next
// to a newer clean index gets the index rebuilt from it, so the index does
// not claim statements the store no longer has.
func TestIndexOlderStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "statements")
	s, _ := openLogged(t, path)
	fill(t, s, 0, 500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ = openLogged(t, path)
	fill(t, s, 500, 500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	s, lb := openLogged(t, path)
	defer s.Close()
	if !strings.Contains(lb.String(), rebuiltMsg) {
		t.Fatalf("index of a newer store trusted for an older one; log: %s", lb)
	}
	check(t, s, 500)
	if _, err := s.Get(t.Context(), testEntry(700)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("entry of the newer store: %v, want ErrNotFound", err)
	}
}

// damageSlot applies fn to the first used slot of the index next to path.
func damageSlot(t *testing.T, path string, fn func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(path + ".index")
	if err != nil {
		t.Fatal(err)
	}
	for off := idxHeaderSize; off+slotSize <= len(b); off += slotSize {
		if !bytes.Equal(b[off:off+slotSize], zeroSlot[:]) {
			fn(b[off : off+slotSize])
			if err := os.WriteFile(path+".index", b, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no used slot")
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestIndexTable drives the table directly with the keys that stress linear
// probing: long clusters (entries sharing their first 8 bytes), entries
// whose home is the last slot (probes run into the overflow and off the
// end, forcing a resize), and random ones; every entry is found with its
// latest meta after every resize.
func TestIndexTable(t *testing.T) {
	x, _, err := openIndex(filepath.Join(t.TempDir(), "idx"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close(0, 0, false)
	want := map[storage.Entry]meta{}
	add := func(e storage.Entry, m meta) {
		if err := x.reserve(1); err != nil {
			t.Fatal(err)
		}
		if err := x.put(e, m); err != nil {
			t.Fatal(err)
		}
		want[e] = m
	}
	// Entries aimed at one home slot (found by trying: the hash is keyed).
	aimed := func(home uint64, n, from int) []storage.Entry {
		var out []storage.Entry
		for i := from; len(out) < n; i++ {
			if e := testEntry(i); x.home(e) == home {
				out = append(out, e)
			}
		}
		return out
	}
	last := uint64(1)<<x.hdr.bits - 1
	for i, e := range aimed(1000, 300, 1_000_000) { // one cluster of 300
		add(e, meta{off: int64(100 + i), size: int32(i), registered: int64(i)})
	}
	for i, e := range aimed(last, 400, 3_000_000) { // the top of the table, past the overflow
		add(e, meta{off: int64(100 + i), index: uint64(i + 1)})
	}
	for i := range 8000 {
		add(testEntry(5000+i), meta{off: int64(100 + i), registered: int64(i)})
	}
	// Updates in place: index set, a lost entry.
	for i := range 8000 {
		if i%3 == 0 {
			e := testEntry(5000 + i)
			m := want[e]
			m.index = uint64(i + 1)
			add(e, m)
		}
	}
	lost := testEntry(99999)
	add(lost, meta{lost: true, index: 7})
	checkTable(t, x, want)
	if _, _, found, err := x.lookup(testEntry(-1)); found || err != nil {
		t.Fatalf("absent entry: found %v, %v", found, err)
	}
}

// TestIndexDeferredSlots: slots of entries with no log index yet are held
// in memory (writeback.go) and are found, counted, carried through resizes,
// written out when too many are held, and on disk after a clean close; the
// second write of a slot (its log index) goes to the file.
func TestIndexDeferredSlots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idx")
	x, _, err := openIndex(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[storage.Entry]meta{}
	put := func(e storage.Entry, m meta) {
		t.Helper()
		if err := x.reserve(1); err != nil {
			t.Fatal(err)
		}
		if err := x.put(e, m); err != nil {
			t.Fatal(err)
		}
		want[e] = m
	}
	const n = maxDeferred + 3000
	for i := range n {
		put(testEntry(i), meta{off: int64(100 + i), size: 1, registered: int64(i)})
		if len(x.deferred) >= maxDeferred {
			t.Fatalf("%d slots held after %d puts, want fewer than %d", len(x.deferred), i+1, maxDeferred)
		}
	}
	if len(x.deferred) == 0 || len(x.deferred) == n {
		t.Fatalf("%d of %d slots held: want some held and the rest written out", len(x.deferred), n)
	}
	held := len(x.deferred)
	for i := n - 100; i < n; i++ { // these were held: their index goes to the file
		m := want[testEntry(i)]
		m.index = uint64(i + 1)
		put(testEntry(i), m)
	}
	if len(x.deferred) != held-100 {
		t.Fatalf("%d slots held after indexing 100 held ones, want %d", len(x.deferred), held-100)
	}
	checkTable(t, x, want)
	if err := x.close(1, 2, true); err != nil {
		t.Fatal(err)
	}
	y, trusted, err := openIndex(path, 1, 2)
	if err != nil || !trusted {
		t.Fatalf("reopen after a clean close: trusted %v, %v", trusted, err)
	}
	defer y.close(0, 0, false)
	if len(y.deferred) != 0 {
		t.Fatal("a reopened index holds slots")
	}
	checkTable(t, y, want)
}

// checkTable checks that the table holds exactly want: its count, every
// entry's meta, and every slot's checksum.
func checkTable(t *testing.T, x *indexFile, want map[storage.Entry]meta) {
	t.Helper()
	if x.hdr.count != uint64(len(want)) {
		t.Fatalf("count %d, want %d", x.hdr.count, len(want))
	}
	for e, m := range want {
		got, _, found, err := x.lookup(e)
		if err != nil || !found || got != m {
			t.Fatalf("lookup %x = %+v, %v, %v; want %+v", e[:8], got, found, err, m)
		}
	}
	if err := x.verify(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEntryIndex compares the on-disk index with the Go map it
// replaced, in the same run: inserting into a table of n entries, and
// looking up an entry that is there (hit) or not (miss, what every new
// registration does first). The store in front of the index also has a
// cache of recent entries; these figures are without it.
func BenchmarkEntryIndex(b *testing.B) {
	const n = 200_000
	keys := make([]storage.Entry, n)
	for i := range keys {
		keys[i] = testEntry(i)
	}
	m := meta{off: 4096, size: 300, registered: 1, index: 7}
	b.Run("map/insert", func(b *testing.B) {
		mp := make(map[storage.Entry]meta)
		for i := 0; b.Loop(); i++ {
			if i%n == 0 {
				mp = make(map[storage.Entry]meta)
			}
			mp[keys[i%n]] = m
		}
	})
	b.Run("disk/insert", func(b *testing.B) {
		dir := b.TempDir()
		var x *indexFile
		for i := 0; b.Loop(); i++ {
			if i%n == 0 {
				if x != nil {
					x.close(0, 0, false)
				}
				var err error
				if x, _, err = openIndex(filepath.Join(dir, fmt.Sprint(i)), 0, 0); err != nil {
					b.Fatal(err)
				}
			}
			if err := x.reserve(1); err != nil {
				b.Fatal(err)
			}
			if err := x.put(keys[i%n], m); err != nil {
				b.Fatal(err)
			}
		}
		x.close(0, 0, false)
	})
	mp := make(map[storage.Entry]meta, n)
	x, _, err := openIndex(filepath.Join(b.TempDir(), "idx"), 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer x.close(0, 0, false)
	for _, k := range keys {
		mp[k] = m
		if err := x.reserve(1); err != nil {
			b.Fatal(err)
		}
		if err := x.put(k, m); err != nil {
			b.Fatal(err)
		}
	}
	missing := testEntry(-7)
	var sink bool
	b.Run("map/lookup-hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_, ok := mp[keys[i%n]]
			sink = sink != ok
		}
	})
	b.Run("disk/lookup-hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_, _, ok, err := x.lookup(keys[i%n])
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("map/lookup-miss", func(b *testing.B) {
		for b.Loop() {
			_, ok := mp[missing]
			sink = sink != ok
		}
	})
	b.Run("disk/lookup-miss", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			e := missing
			e[0], e[1], e[2] = byte(i), byte(i>>8), byte(i>>16)
			if _, _, ok, err := x.lookup(e); err != nil || ok {
				b.Fatal(ok, err)
			}
		}
	})
	_ = sink
}

// BenchmarkIndexGrow measures one resize of a table at its load limit
// (3/4 of 2^16 home slots, 49,152 entries): the store's writes wait for
// it. ns/entry extrapolates to larger tables (the work is one sequential
// read and write of the table, plus sorting clusters).
func BenchmarkIndexGrow(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	x, _, err := openIndex(src, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	const n = 3 << 16 / 4
	for i := range n {
		if err := x.reserve(1); err != nil {
			b.Fatal(err)
		}
		if err := x.put(testEntry(i), meta{off: int64(4096 + i), index: uint64(i + 1)}); err != nil {
			b.Fatal(err)
		}
	}
	if x.hdr.bits != 16 {
		b.Fatalf("table of 2^%d slots, want 2^16", x.hdr.bits)
	}
	raw, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	hdr := x.hdr
	x.close(0, 0, false)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			b.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		y := &indexFile{path: path, f: f, hdr: hdr}
		b.StartTimer()
		if err := y.grow(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		y.close(0, 0, false)
		os.Remove(path)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}
