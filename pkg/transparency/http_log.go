// The log's read API over HTTP: checkpoint, tiles, consistency proofs and
// the note verifier key.

package transparency

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
)

func (h *handler) getConsistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := strconv.ParseUint(q.Get("from"), 10, 64)
	if err != nil {
		h.problem(w, r, http.StatusBadRequest, "Bad Tree Size", "from must be a tree size (decimal)")
		return
	}
	var to uint64
	if v := q.Get("to"); v != "" {
		if to, err = strconv.ParseUint(v, 10, 64); err != nil {
			h.problem(w, r, http.StatusBadRequest, "Bad Tree Size", "to must be a tree size (decimal)")
			return
		}
	}
	b, err := h.s.ConsistencyReceipt(r.Context(), from, to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", scrapi.MediaTypeCOSE)
	w.Write(b)
}

// getVKey serves the checkpoint verifier key as text, so that auditors,
// witnesses and monitors can verify checkpoints without access to the
// server's disk.
func (h *handler) getVKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, h.s.VerifierKey()+"\n") // the client went away: nothing to do
}

func (h *handler) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	b, err := h.s.log.ReadCheckpoint(r.Context())
	if err != nil {
		h.tileError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// getTile serves hash tiles (tile/<L>/<N>[.p/<W>]) and entry bundles
// (tile/entries/<N>[.p/<W>]) of the C2SP tlog-tiles layout. Only canonical
// paths are served (a path that parses but is not how the spec writes that
// tile, such as tile/00/x000/001, is 404), so every tile has one URL for
// caches. Entry bundles are gzip-compressed for clients that accept it, as
// tlog-tiles recommends.
func (h *handler) getTile(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	var b []byte
	var partial uint8
	var err error
	entries := false
	if rest, ok := strings.CutPrefix(p, "entries/"); ok {
		var idx uint64
		idx, partial, err = layout.ParseTileIndexPartial(rest)
		if err != nil || layout.EntriesPath(idx, partial) != "tile/"+p {
			h.problem(w, r, http.StatusNotFound, "Not Found", fmt.Sprintf("bad entry bundle path %q", p))
			return
		}
		entries = true
		b, err = h.s.log.ReadEntryBundle(r.Context(), idx, partial)
	} else {
		level, rest, _ := strings.Cut(p, "/")
		var l, idx uint64
		l, idx, partial, err = layout.ParseTileLevelIndexPartial(level, rest)
		if err != nil || layout.TilePath(l, idx, partial) != "tile/"+p {
			h.problem(w, r, http.StatusNotFound, "Not Found", fmt.Sprintf("bad tile path %q", p))
			return
		}
		b, err = h.s.log.ReadTile(r.Context(), l, idx, partial)
	}
	if err != nil {
		h.tileError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if partial == 0 {
		w.Header().Set("Cache-Control", "max-age=604800, immutable")
	}
	if entries {
		w.Header().Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
			_, _ = zw.Write(b)                              // the client went away: nothing to do
			_ = zw.Close()
			return
		}
	}
	w.Write(b)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

func (h *handler) tileError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		h.problem(w, r, http.StatusNotFound, "Not Found", "no such log resource")
		return
	}
	h.fail(w, r, err)
}
