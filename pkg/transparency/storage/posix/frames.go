package posix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// badFrame says why the record at an offset is not intact.
type badFrame struct {
	reason string
	// complete: the record lies wholly inside the file (so it is not a
	// record whose write was cut short).
	complete bool
}

// readFrame reads the record at off of a file of size bytes. It returns the
// payload of an intact record, or why the record is damaged; err is an I/O
// error.
func readFrame(r io.ReaderAt, off, size int64, buf *[]byte) ([]byte, *badFrame, error) {
	if size-off < frameHeader {
		return nil, &badFrame{reason: fmt.Sprintf("record header cut short (%d of %d bytes)", size-off, frameHeader)}, nil
	}
	var hdr [frameHeader]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return nil, nil, fmt.Errorf("read statement store at byte offset %d: %w", off, err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n < indexLen || n > putHeader+MaxStatementSize {
		return nil, &badFrame{reason: fmt.Sprintf("impossible record length %d", n)}, nil
	}
	if off+frameHeader+n > size {
		return nil, &badFrame{reason: fmt.Sprintf("record of %d bytes runs past the end of the file", n)}, nil
	}
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	p := (*buf)[:n]
	if _, err := r.ReadAt(p, off+frameHeader); err != nil {
		return nil, nil, fmt.Errorf("read statement store at byte offset %d: %w", off, err)
	}
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, &badFrame{reason: "checksum mismatch", complete: true}, nil
	}
	if !wellFormed(p) {
		return nil, &badFrame{reason: fmt.Sprintf("unknown record type 0x%02x or length %d", p[0], n), complete: true}, nil
	}
	return p, nil, nil
}

func wellFormed(p []byte) bool {
	switch p[0] {
	case recPut:
		return len(p) >= putHeader
	case recIndex, recLost:
		return len(p) == indexLen
	}
	return false
}

// nextFrame returns the offset of the first intact record at or after from,
// or -1.
func nextFrame(r io.ReaderAt, from, size int64) (int64, error) {
	const window = 1 << 20
	buf := make([]byte, window+frameHeader+1)
	var payload []byte
	for base := from; base+frameHeader <= size; base += window {
		n := min(int64(len(buf)), size-base)
		if _, err := r.ReadAt(buf[:n], base); err != nil && !errors.Is(err, io.EOF) {
			return -1, fmt.Errorf("read statement store at byte offset %d: %w", base, err)
		}
		for i := int64(0); i < window && i+frameHeader <= n; i++ {
			l := int64(binary.BigEndian.Uint32(buf[i:]))
			if l < indexLen || l > putHeader+MaxStatementSize || base+i+frameHeader+l > size {
				continue
			}
			if i+frameHeader < n {
				switch t := buf[i+frameHeader]; {
				case t == recPut:
				case (t == recIndex || t == recLost) && l == indexLen:
				default:
					continue
				}
			}
			_, bad, err := readFrame(r, base+i, size, &payload)
			if err != nil {
				return -1, err
			}
			if bad == nil {
				return base + i, nil
			}
		}
	}
	return -1, nil
}

func frame(payload []byte) []byte {
	b := make([]byte, frameHeader+len(payload))
	copy(b[frameHeader:], payload)
	setFrameHeader(b)
	return b
}

// setFrameHeader fills the header of a record whose payload follows it in b.
func setFrameHeader(b []byte) {
	payload := b[frameHeader:]
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
}
