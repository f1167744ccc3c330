package oci

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
)

// savedLayout attaches two statements and an SBOM to a new image on olareg
// and saves it with its referrers as an OCI image layout; it returns the
// layout's directory and the image's digest.
func savedLayout(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	h, stop := ocitest.NewOlaregHandler(nil)
	host := serve(t, h, stop)
	img := pushImage(t, host, "acme/widgets")
	c := newClient(t)
	for i := range 2 {
		if _, err := c.Attach(ctx, img, attachment(i)); err != nil {
			t.Fatal(err)
		}
	}
	pushOther(t, c, img)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ocitest.SaveLayout(ctx, img, "v1", dir); err != nil {
		t.Fatal(err)
	}
	_, digest, _ := strings.Cut(img, "@")
	return dir, digest
}

// TestLayoutDiscover: a client WithLayout finds the image (by digest or
// tag) and its statements in the layout under any registry name, with no
// network: the names below do not resolve, and a dial would fail.
func TestLayoutDiscover(t *testing.T) {
	ctx := context.Background()
	dir, digest := savedLayout(t)
	c := newClient(t, WithLayout(dir))
	for _, ref := range []string{"registry.invalid/acme/widgets@" + digest, "registry.invalid/acme/widgets:v1", "other.invalid:5000/x@" + digest} {
		d, err := c.Discover(ctx, ref, WithContent())
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if d.Digest != digest || d.Mode != ModeReferrersAPI || len(d.Entries) != 2 {
			t.Fatalf("%s: digest %s, mode %s, %d entries", ref, d.Digest, d.Mode, len(d.Entries))
		}
		for i, e := range d.Entries {
			want := attachment(i)
			if e.Err != nil || !bytes.Equal(e.Statement, want.Statement) || !bytes.Equal(e.Preimage, want.Preimage) ||
				e.Annotations.EntryID != want.Annotations.EntryID {
				t.Errorf("%s: entry %d: %v, annotations %+v", ref, i, e.Err, e.Annotations)
			}
		}
	}
	all, err := c.Discover(ctx, "registry.invalid/acme/widgets@"+digest, WithArtifactType(""))
	if err != nil || len(all.Entries) != 3 {
		t.Fatalf("every referrer: %+v %v", all, err)
	}
	if _, err := c.Discover(ctx, "registry.invalid/acme/widgets:nosuch"); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("unknown tag: %v, want ErrImageNotFound", err)
	}
	var se *StatusError
	if _, err := c.Attach(ctx, "registry.invalid/acme/widgets@"+digest, attachment(5)); !errors.As(err, &se) {
		t.Errorf("attach to a layout: %v, want a refusal", err)
	}
}

// TestLayoutTampered: content that does not match its digest is refused as
// it is from a registry.
func TestLayoutTampered(t *testing.T) {
	ctx := context.Background()
	dir, digest := savedLayout(t)
	corrupt := newBlob(PreimageMediaType, attachment(1).Preimage, "").desc.Digest
	p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(corrupt, "sha256:"))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.ToUpper(b), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := newClient(t, WithLayout(dir)).Discover(ctx, "registry.invalid/acme/widgets@"+digest, WithContent())
	if err != nil || len(d.Entries) != 2 {
		t.Fatalf("%+v %v", d, err)
	}
	for i, e := range d.Entries {
		if (i == 1) != errors.Is(e.Err, ErrDigestMismatch) {
			t.Errorf("entry %d: %v (tampered: %v)", i, e.Err, i == 1)
		}
	}
	// The image manifest itself: a tag then names other bytes, whose digest
	// has no referrers.
	p = filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	if b, err = os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = newClient(t, WithLayout(dir)).Discover(ctx, "registry.invalid/acme/widgets:v1")
	if err != nil || d.Digest == digest || len(d.Entries) != 0 {
		t.Fatalf("tampered image manifest: %+v %v", d, err)
	}
}

func TestLayoutRefused(t *testing.T) {
	good, _ := savedLayout(t)
	index, err := os.ReadFile(filepath.Join(good, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		files map[string]string // written into a copy of the good layout; "" removes
	}{
		{"no directory", nil},
		{"no oci-layout", map[string]string{"oci-layout": ""}},
		{"oci-layout without a version", map[string]string{"oci-layout": `{}`}},
		{"index.json not JSON", map[string]string{"index.json": "{"}},
		{"index.json entry escaping the layout", map[string]string{"index.json": regexp.MustCompile(`("digest":\s*"sha256:)`).ReplaceAllString(string(index), "${1}../../")}},
		{"index.json too large", map[string]string{"index.json": `{"manifests":[` + strings.Repeat(" ", maxLayoutIndex) + `]}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "l")
			if c.files != nil {
				if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
					t.Fatal(err)
				}
				for name, content := range c.files {
					p := filepath.Join(dir, name)
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
					if content != "" {
						if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if _, err := New(WithLayout(dir)); !errors.Is(err, ErrLayout) {
				t.Fatalf("New: %v, want ErrLayout", err)
			}
		})
	}
}

func FuzzLayoutIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`))
	f.Add([]byte(`{"manifests":[{"digest":"sha256:../../etc/passwd"}]}`))
	f.Add([]byte(`{"manifests":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := parseLayoutIndex(b)
		if err != nil {
			return
		}
		for _, d := range ds {
			if !layoutDigest.MatchString(d.Digest) || strings.Contains(blobPath(d.Digest), "..") {
				t.Fatalf("accepted digest %q", d.Digest)
			}
		}
	})
}

// TestSaveLayout: Client.SaveLayout writes what WithLayout reads back (on
// both registry kinds), a layout go-containerregistry's reader lists too;
// it refuses a directory that is not empty.
func TestSaveLayout(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h, stop := b.new()
			host := serve(t, h, stop)
			img := pushImage(t, host, "acme/widgets")
			c := newClient(t)
			for i := range 2 {
				if _, err := c.Attach(ctx, img, attachment(i)); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(t.TempDir(), "layout")
			saved, err := c.SaveLayout(ctx, host+"/acme/widgets:v1", dir)
			if err != nil {
				t.Fatal(err)
			}
			_, digest, _ := strings.Cut(img, "@")
			if saved.Digest != digest || len(saved.Entries) != 2 {
				t.Fatalf("saved %s with %d entries", saved.Digest, len(saved.Entries))
			}
			d, err := newClient(t, WithLayout(dir)).Discover(ctx, "registry.invalid/acme/widgets:v1", WithContent())
			if err != nil || d.Digest != digest || len(d.Entries) != 2 {
				t.Fatalf("read back: %+v %v", d, err)
			}
			for i, e := range d.Entries {
				want := attachment(i)
				if e.Err != nil || !bytes.Equal(e.Statement, want.Statement) || !bytes.Equal(e.Preimage, want.Preimage) ||
					e.Annotations.EntryID != want.Annotations.EntryID {
					t.Errorf("entry %d: %v, annotations %+v", i, e.Err, e.Annotations)
				}
			}
			p, err := ggcrlayout.FromPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := p.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil || len(im.Manifests) != 3 || im.Manifests[0].Digest.String() != digest {
				t.Fatalf("go-containerregistry reads %+v (%v)", im, err)
			}
			for _, m := range im.Manifests[1:] {
				ref, err := p.Image(m.Digest)
				if err != nil {
					t.Fatal(err)
				}
				mf, err := ref.Manifest()
				if err != nil || mf.Subject == nil || mf.Subject.Digest.String() != digest {
					t.Fatalf("referrer %s: %+v %v", m.Digest, mf, err)
				}
			}
			if _, err := c.SaveLayout(ctx, img, dir); err == nil {
				t.Error("saved into a directory that is not empty")
			}
		})
	}
}
