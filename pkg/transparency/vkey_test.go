package transparency_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/veraison/go-cose"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// indie is an independent tlog-tiles client: it uses only the standard
// library and golang.org/x/mod's sumdb/note and sumdb/tlog, and trusts
// nothing but the verifier key it fetched from GET /log/vkey.
type indie struct {
	t    *testing.T
	base string
	v    note.Verifier
}

func (c *indie) get(path string) []byte {
	c.t.Helper()
	resp, err := http.Get(c.base + "/" + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /%s: %d %v", path, resp.StatusCode, err)
	}
	return b
}

// checkpoint fetches and verifies the checkpoint (C2SP tlog-checkpoint).
func (c *indie) checkpoint() (origin string, size int64, root tlog.Hash) {
	c.t.Helper()
	n, err := note.Open(c.get("checkpoint"), note.VerifierList(c.v))
	if err != nil {
		c.t.Fatalf("checkpoint does not verify with the published key: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		c.t.Fatalf("checkpoint body %q", n.Text)
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		c.t.Fatal(err)
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		c.t.Fatalf("root %q: %v", lines[2], err)
	}
	copy(root[:], h)
	return lines[0], size, root
}

// ReadTiles implements tlog.TileReader over the tlog-tiles paths (which
// omit x/mod's height element: tile/<L>/<N>[.p/<W>]).
func (c *indie) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p, ok := strings.CutPrefix(t.Path(), "tile/8/")
		if !ok {
			return nil, fmt.Errorf("tile height %d", t.H)
		}
		out[i] = c.get("tile/" + p)
	}
	return out, nil
}
func (c *indie) Height() int                             { return 8 }
func (c *indie) SaveTiles(tiles []tlog.Tile, d [][]byte) {}

// entry reads entry i from its entry bundle (uint16 length prefixes).
func (c *indie) entry(i, size int64) []byte {
	c.t.Helper()
	n, w := i/256, size-i/256*256
	p := tlog.Tile{H: 8, L: 0, N: n, W: int(min(w, 256))}.Path()
	p = "tile/entries/" + strings.TrimPrefix(p, "tile/8/0/")
	b := c.get(p)
	for k := int64(0); len(b) >= 2; k++ {
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			break
		}
		if k == i%256 {
			return b[2 : 2+l]
		}
		b = b[2+l:]
	}
	c.t.Fatalf("entry %d not in bundle %s", i, p)
	return nil
}

// TestIndependentClientVerifiesLog fetches the checkpoint key over HTTP and
// verifies checkpoints, tiles, entries, and inclusion and consistency
// proofs with golang.org/x/mod's note and tlog only.
func TestIndependentClientVerifiesLog(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	ctx := t.Context()
	vkey := string(bytes.TrimSpace((&indie{t: t, base: e.srv.URL}).get("log/vkey")))
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("GET /log/vkey: %q is not a verifier key: %v", vkey, err)
	}
	c := &indie{t: t, base: e.srv.URL, v: v}
	if v.Name() != "ts.test" || e.svc.Origin() != "ts.test" {
		t.Fatalf("origin %q (key name %q), want the log's URL prefix ts.test", e.svc.Origin(), v.Name())
	}
	cfg, err := e.client.Configuration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogVKey != vkey || cfg.LogOrigin != "ts.test" {
		t.Fatalf("configuration log_vkey %q log_origin %q", cfg.LogVKey, cfg.LogOrigin)
	}

	// Enough entries to fill a tile, so that full and partial tiles are read.
	register := func(n int, prefix string) [][]byte {
		receipts := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				reg, err := e.client.Register(ctx, e.sign(t, fmt.Sprint(prefix, i)))
				if err != nil {
					t.Error(err)
					return
				}
				receipts[i] = reg.Receipt
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return receipts
	}
	receipts := register(260, "a")
	origin, size1, root1 := c.checkpoint()
	if origin != v.Name() {
		t.Fatalf("checkpoint origin %q, key name %q", origin, v.Name())
	}
	hr := tlog.TileHashReader(tlog.Tree{N: size1, Hash: root1}, c)
	if h, err := tlog.TreeHash(size1, hr); err != nil || h != root1 {
		t.Fatalf("tiles do not hash to the checkpoint root: %v", err)
	}
	for _, raw := range [][]byte{receipts[0], receipts[259]} {
		r, err := scitt.ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		idx := int64(r.Inclusion[0].LeafIndex)
		data := c.entry(idx, size1)
		stmt := c.get("entries/" + hex.EncodeToString(data) + "/statement")
		if sum := sha256.Sum256(stmt); !bytes.Equal(data, sum[:]) {
			t.Fatalf("entry %d is not SHA-256 of its statement", idx)
		}
		leaf := tlog.RecordHash(data)
		p, err := tlog.ProveRecord(size1, idx, hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, size1, root1, idx, leaf); err != nil {
			t.Fatalf("inclusion of %d: %v", idx, err)
		}
		// The receipt's proof, at its own tree size, is the same path.
		rs := int64(r.Inclusion[0].TreeSize)
		rp, err := tlog.ProveRecord(rs, idx, hr)
		if err != nil {
			t.Fatal(err)
		}
		if len(rp) != len(r.Inclusion[0].Path) {
			t.Fatalf("receipt path of %d nodes, independent proof %d", len(r.Inclusion[0].Path), len(rp))
		}
		for k := range rp {
			if !bytes.Equal(rp[k][:], r.Inclusion[0].Path[k]) {
				t.Fatalf("receipt path node %d differs from the independent proof", k)
			}
		}
	}

	register(5, "b")
	_, size2, root2 := c.checkpoint()
	if size2 <= size1 {
		t.Fatalf("log did not grow: %d then %d", size1, size2)
	}
	hr2 := tlog.TileHashReader(tlog.Tree{N: size2, Hash: root2}, c)
	tp, err := tlog.ProveTree(size2, size1, hr2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, size2, root2, size1, root1); err != nil {
		t.Fatalf("consistency %d -> %d: %v", size1, size2, err)
	}
	bad := root1
	bad[0] ^= 1
	if err := tlog.CheckTree(tp, size2, root2, size1, bad); err == nil {
		t.Fatal("consistency proof checked against a wrong old root")
	}
}

// TestOriginOfExistingLogNeverChanges: a log keeps the origin of its
// checkpoint key (logs created with the old default "<host>/scitt-log" keep
// it), and a configured origin that differs is a configuration error.
func TestOriginOfExistingLogNeverChanges(t *testing.T) {
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(origin string) (*transparency.Service, error) {
		return transparency.Open(t.Context(), transparency.Options{Dir: dir, Policy: pol, Issuer: "https://ts.test", Origin: origin})
	}
	svc, err := open("ts.test/scitt-log")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	svc, err = open("")
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Origin(); got != "ts.test/scitt-log" {
		t.Errorf("reopened with the default origin: %q, want the log's own ts.test/scitt-log", got)
	}
	if !strings.HasPrefix(svc.VerifierKey(), "ts.test/scitt-log+") {
		t.Errorf("vkey %q", svc.VerifierKey())
	}
	if err := svc.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := open("elsewhere.test"); !errors.Is(err, transparency.ErrConfig) {
		t.Fatalf("configured origin differing from the log's: %v, want ErrConfig", err)
	}
	if _, err := transparency.Open(t.Context(), transparency.Options{Dir: t.TempDir(), Policy: pol, Origin: "bad origin"}); !errors.Is(err, transparency.ErrConfig) {
		t.Fatalf("origin with a space: %v, want ErrConfig", err)
	}
}

// TestTilePathsCanonicalAndBundlesGzipped: only canonical tile paths are
// served, and entry bundles come gzip-compressed to clients that accept it.
func TestTilePathsCanonicalAndBundlesGzipped(t *testing.T) {
	e := newEnv(t, transparency.PolicyConfig{})
	get := func(path, enc string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc) // set by hand: no transparent decompression
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	// The policy statement is entry 0: a partial bundle and tile of width 1.
	for _, p := range []string{"tile/entries/000.p/1", "tile/0/000.p/1"} {
		if resp, _ := get(p, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"tile/entries/x000/000.p/1", "tile/00/000.p/1", "tile/+0/000.p/1", "tile/0/x000/000.p/1", "tile/entries/000.p/01"} {
		if resp, _ := get(p, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("non-canonical %s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, plain := get("tile/entries/000.p/1", "")
	if resp.Header.Get("Content-Encoding") != "" || len(plain) != 2+32 {
		t.Fatalf("plain bundle: encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(plain))
	}
	resp, zipped := get("tile/entries/000.p/1", "br, gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip bundle: headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Fatalf("gunzipped bundle differs: %v", err)
	}
	if resp, _ := get("tile/entries/000.p/1", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip;q=0 got gzip")
	}
}

// TestSharedLogKeepsLegacyOrigin: a shared log's checkpoint key is derived
// from the receipt key and the origin, so its default origin stays the one
// such logs were created with (the same key as before this change), unless
// one is configured.
func TestSharedLogKeepsLegacyOrigin(t *testing.T) {
	k, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := k.MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "service.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := transparency.Options{Dir: t.TempDir(), Issuer: "https://ts.test", KeyFile: keyFile, SharedLog: true}
	vkey, err := transparency.InitLogKey(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(vkey, transparency.LegacyOrigin("https://ts.test")+"+") || transparency.LegacyOrigin("https://ts.test") != "ts.test/scitt-log" {
		t.Fatalf("shared log vkey %q, want origin ts.test/scitt-log", vkey)
	}
	again, err := transparency.InitLogKey(transparency.Options{Dir: t.TempDir(), Issuer: "https://ts.test", KeyFile: keyFile, SharedLog: true})
	if err != nil || again != vkey {
		t.Fatalf("another replica derives %q (%v), want %q", again, err, vkey)
	}
	opts.Origin = "ts.test"
	if vkey, err := transparency.InitLogKey(opts); err != nil || !strings.HasPrefix(vkey, "ts.test+") {
		t.Fatalf("configured origin: %q %v", vkey, err)
	}
}
