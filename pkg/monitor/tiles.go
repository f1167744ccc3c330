package monitor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Limits on what the monitor reads from the service (untrusted bytes).
const (
	maxCheckpointSize = 64 << 10
	maxTileSize       = 256 * tlog.HashSize
	// An entry bundle holds at most 256 entries of at most 65,535 bytes,
	// each with a 2-byte length (C2SP tlog-tiles).
	maxBundleSize    = 256 * (2 + 65535)
	maxStatementSize = 16 << 20
	maxVKeySize      = 4 << 10
	bundleWidth      = 256
)

// Checkpoint is the body of a C2SP tlog-checkpoint (signature checked by the
// caller).
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// ParseCheckpointBody parses the text of a checkpoint note: origin, decimal
// size, base64 root, then optional extension lines.
func ParseCheckpointBody(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root lines", ErrBadCheckpoint)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrBadCheckpoint, lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root %q is not a base64 SHA-256 hash", ErrBadCheckpoint, lines[2])
	}
	var cp Checkpoint
	cp.Origin, cp.Size = lines[0], size
	copy(cp.Root[:], h)
	return cp, nil
}

// ParseEntryBundle splits a tlog-tiles entry bundle into its entries
// (each a big-endian uint16 length and the data). want is the number of
// entries the bundle must hold.
func ParseEntryBundle(b []byte, want int) ([][]byte, error) {
	if want < 1 || want > bundleWidth {
		return nil, fmt.Errorf("%w: an entry bundle holds 1 to %d entries, not %d", ErrBadLog, bundleWidth, want)
	}
	out := make([][]byte, 0, want)
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: entry bundle truncated in a length", ErrBadLog)
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("%w: entry bundle truncated: entry of %d bytes, %d left", ErrBadLog, n, len(b)-2)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
		if len(out) > bundleWidth {
			break
		}
	}
	if len(out) != want {
		return nil, fmt.Errorf("%w: entry bundle holds %d entries, want %d", ErrBadLog, len(out), want)
	}
	return out, nil
}

// fetcher reads the service's log resources over HTTP.
type fetcher struct {
	base   string
	client *http.Client
}

// errNotFound marks a 404.
var errNotFound = errors.New("not found")

func (f *fetcher) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read /%s: %w", ErrUnreachable, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET /%s: %w", path, errNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET /%s: status %d", ErrUnreachable, path, resp.StatusCode)
	case int64(len(b)) > limit:
		return nil, fmt.Errorf("%w: GET /%s: more than %d bytes", ErrBadLog, path, limit)
	}
	return b, nil
}

// tileReader implements tlog.TileReader over tlog-tiles paths (which omit
// x/mod's height element) and keeps full tiles, which never change.
type tileReader struct {
	ctx  context.Context
	f    *fetcher
	full map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if b, ok := r.full[t]; ok {
			out[i] = b
			continue
		}
		p, ok := strings.CutPrefix(t.Path(), "tile/8/")
		if !ok {
			return nil, fmt.Errorf("tile height %d", t.H)
		}
		b, err := r.f.get(r.ctx, "tile/"+p, maxTileSize)
		if err != nil {
			return nil, err
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%w: tile %s has %d bytes, want %d", ErrBadLog, p, len(b), t.W*tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

// SaveTiles keeps the full tiles that tlog verified.
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		if t.W == 1<<8 && len(r.full) < 1<<16 {
			r.full[t] = bytes.Clone(data[i])
		}
	}
}

// bundlePath is the tlog-tiles path of entry bundle n of a tree of size.
func bundlePath(n, size int64) string {
	w := min(size-n*bundleWidth, bundleWidth)
	p := tlog.Tile{H: 8, L: 0, N: n, W: int(w)}.Path()
	return "tile/entries/" + strings.TrimPrefix(p, "tile/8/0/")
}
