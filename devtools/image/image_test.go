package main

import (
	"archive/tar"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var created = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// TestIndexPushExtract builds the two-platform index, pushes it to an
// in-process registry, and checks what a runtime sees: an OCI index of
// linux/amd64 and linux/arm64, non-root config with the binary as entrypoint,
// the annotations, the data directory owned by nonroot, and each platform's
// binary read back from its layers. The same input gives the same digest.
func TestIndexPushExtract(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	bins := map[string][]byte{"linux/amd64": []byte("amd64 binary"), "linux/arm64": []byte("arm64 binary")}
	m := Meta{Version: "v1.2.3", Revision: strings.Repeat("ab", 20), Source: "https://github.com/trustfabric/trustfabric", Created: created}
	idx, err := Index(bins, []byte("CA"), m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Index(bins, []byte("CA"), m)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same binaries differ: %s %s", d1, d2)
	}
	tag, err := name.NewTag(u.Host + "/trustfabric:v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}

	pulled, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	im, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 || im.Annotations["org.opencontainers.image.version"] != "v1.2.3" {
		t.Fatalf("index %+v", im)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		plat, _ := v1.ParsePlatform(p)
		img, err := remote.Image(tag, remote.WithPlatform(*plat))
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/usr/local/bin/trustfabric" || cf.OS+"/"+cf.Architecture != p ||
			cf.Config.Labels["org.opencontainers.image.revision"] != m.Revision || !cf.Created.Equal(created) {
			t.Errorf("%s config %+v", p, cf.Config)
		}
		man, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if man.MediaType != types.OCIManifestSchema1 || man.Annotations["org.opencontainers.image.licenses"] != "Apache-2.0" {
			t.Errorf("%s manifest %+v", p, man)
		}
		b, err := Extract(img)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(bins[p]) {
			t.Errorf("%s: extracted %q", p, b)
		}
	}
}

func TestIndexRefuses(t *testing.T) {
	if _, err := Index(nil, nil, Meta{Created: created}); err == nil {
		t.Error("an index of no binaries was built")
	}
	if _, err := Index(map[string][]byte{"windows/amd64": []byte("x")}, nil, Meta{Created: created}); err == nil {
		t.Error("a windows image was built")
	}
}

// TestBaseLayer: the base a non-root, read-only-root container needs: the
// nonroot user, a writable /tmp, and the data directory owned by nonroot.
func TestBaseLayer(t *testing.T) {
	l, err := BaseLayer([]byte("CA"), created)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		if h.Name == "etc/passwd" {
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "nonroot:x:65532:65532:") {
				t.Errorf("passwd %q", b)
			}
		}
	}
	for name, want := range map[string]struct {
		mode int64
		uid  int
	}{"tmp/": {0o1777, 0}, "var/lib/trustfabric/": {0o700, NonRoot}, "home/nonroot/": {0o700, NonRoot}, "etc/ssl/certs/ca-certificates.crt": {0o644, 0}} {
		h, ok := got[name]
		if !ok || h.Mode != want.mode || h.Uid != want.uid || !h.ModTime.Equal(created) {
			t.Errorf("%s: %+v, want mode %o uid %d", name, h, want.mode, want.uid)
		}
	}
}

// TestShellIndex: the shell variant has the platforms given a busybox, runs
// /bin/sh with no entrypoint, and its file system (ExtractTree) has the CLI
// and the busybox applets as relative symlinks.
func TestShellIndex(t *testing.T) {
	bins := map[string][]byte{"linux/amd64": []byte("amd64 binary"), "linux/arm64": []byte("arm64 binary")}
	m := Meta{Version: "v1.2.3", Created: created}
	if _, err := ShellIndex(bins, map[string][]byte{"linux/s390x": []byte("bb")}, nil, m); err == nil {
		t.Error("a busybox for a platform without a binary was accepted")
	}
	idx, err := ShellIndex(bins, map[string][]byte{"linux/amd64": []byte("busybox bytes")}, []byte("CA"), m)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.Architecture != "amd64" {
		t.Fatalf("shell index manifests %+v, want linux/amd64 only", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 0 || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "/bin/sh" || cf.Config.User != "65532:65532" {
		t.Errorf("shell variant config %+v", cf.Config)
	}
	dir := t.TempDir()
	if err := ExtractTree(img, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "usr/local/bin/trustfabric")); err != nil || string(b) != "amd64 binary" {
		t.Errorf("CLI in the tree: %q, %v", b, err)
	}
	for _, a := range []string{"sh", "mktemp", "base64"} {
		if l, err := os.Readlink(filepath.Join(dir, "bin", a)); err != nil || l != "busybox" {
			t.Errorf("bin/%s -> %q, %v", a, l, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bin/sh")); err != nil || string(b) != "busybox bytes" {
		t.Errorf("bin/sh reads %q, %v", b, err)
	}
}

// TestExtractTreeRefusesEscapes: a layer entry or symlink that leaves the
// root is an error, not a write outside it.
func TestExtractTreeRefusesEscapes(t *testing.T) {
	for _, e := range []entry{{name: "../evil", mode: 0o644, data: []byte("x")}, {name: "bin/up", link: "../../etc/passwd"}} {
		l, err := tarLayer([]entry{{name: "bin", mode: 0o755, dir: true}, e}, created)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := ExtractTree(img, t.TempDir()); err == nil {
			t.Errorf("%s was extracted", e.name)
		}
	}
}
