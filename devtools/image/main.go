// Command image builds Trustfabric's container image without a Docker daemon
// and pushes it: a multi-arch OCI index (linux/amd64, linux/arm64) of images
// made of two layers on no base image, both built here:
//
//   - a base layer: /etc/passwd and /etc/group with the nonroot user
//     (65532), the host's CA certificates, /tmp (1777) and
//     /var/lib/trustfabric owned by nonroot (the data directory for serve);
//   - the static release binary at /usr/local/bin/trustfabric.
//
// The config runs as 65532:65532 with the binary as entrypoint; nothing is
// written outside /tmp and the data volume, so a read-only root filesystem
// works. Manifests and index carry the OCI annotations (version, revision,
// created, source, licenses). Layers have fixed mtimes: the same binaries give
// the same digests.
//
//	go run ./devtools/image --repo localhost:5000/trustfabric --version v1.2.3 \
//	  --bin linux/amd64=dist/trustfabric_v1.2.3_linux_amd64 --bin linux/arm64=dist/trustfabric_v1.2.3_linux_arm64
//
// prints REPO@sha256:… of the index. With --extract PLATFORM --out FILE it
// instead pulls REPO (a tag or digest) and writes that platform's binary from
// its layers to FILE, so .ci/run can run the binary the image carries.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BinaryPath is where the image carries the CLI.
const BinaryPath = "usr/local/bin/trustfabric"

// NonRoot is the uid and gid the image runs as (distroless's nonroot).
const NonRoot = 65532

// caFiles are the host paths tried for the CA bundle, first found wins.
var caFiles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

// Meta are the image's OCI annotations and labels.
type Meta struct {
	Version, Revision, Source string
	Created                   time.Time
}

func (m Meta) annotations() map[string]string {
	a := map[string]string{
		"org.opencontainers.image.title":       "trustfabric",
		"org.opencontainers.image.description": "Provenance, workload identity and transparency receipts for CI pipelines",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
	for k, v := range a {
		if v == "" {
			delete(a, k)
		}
	}
	return a
}

type entry struct {
	name string
	mode int64
	dir  bool
	data []byte
	uid  int
}

// tarLayer makes an uncompressed-tar layer with fixed mtimes (gzip'd by ggcr).
func tarLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// BaseLayer is the in-repo base: users, CA certificates, /tmp and the data
// directory. ca may be nil (no CA bundle on the host).
func BaseLayer(ca []byte, mtime time.Time) (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot)
	es := []entry{
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "home", mode: 0o755, dir: true},
		{name: "home/nonroot", mode: 0o700, dir: true, uid: NonRoot},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: "var", mode: 0o755, dir: true},
		{name: "var/lib", mode: 0o755, dir: true},
		{name: "var/lib/trustfabric", mode: 0o700, dir: true, uid: NonRoot},
	}
	if ca != nil {
		es = append(es, entry{name: "etc/ssl", mode: 0o755, dir: true}, entry{name: "etc/ssl/certs", mode: 0o755, dir: true},
			entry{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca})
	}
	return tarLayer(es, mtime)
}

// Image builds one platform's image from a static binary.
func Image(platform v1.Platform, base v1.Layer, binary []byte, m Meta) (v1.Image, error) {
	bin, err := tarLayer([]entry{{name: "usr", mode: 0o755, dir: true}, {name: "usr/local", mode: 0o755, dir: true},
		{name: "usr/local/bin", mode: 0o755, dir: true}, {name: BinaryPath, mode: 0o755, data: binary}}, m.Created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, bin)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: m.Created.UTC().Truncate(time.Second)}
	cf.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cf.Config.Entrypoint = []string{"/" + BinaryPath}
	cf.Config.Cmd = []string{"--help"}
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/home/nonroot"}
	cf.Config.Labels = m.annotations()
	cf.History = nil
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, m.annotations()).(v1.Image), nil
}

// Index builds the multi-arch index of binaries by platform ("linux/amd64").
func Index(binaries map[string][]byte, ca []byte, m Meta) (v1.ImageIndex, error) {
	if len(binaries) == 0 {
		return nil, errors.New("no binaries: give --bin linux/amd64=FILE …")
	}
	base, err := BaseLayer(ca, m.Created)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range slices.Sorted(maps.Keys(binaries)) {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		if plat.OS != "linux" {
			return nil, fmt.Errorf("platform %q: the image is for linux only", p)
		}
		img, err := Image(*plat, base, binaries[p], m)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	return mutate.Annotations(idx, m.annotations()).(v1.ImageIndex), nil
}

// Extract reads the binary from an image's layers (the last layer holding it wins).
func Extract(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var found []byte
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			if strings.TrimPrefix(h.Name, "/") == BinaryPath && h.Typeflag == tar.TypeReg {
				if found, err = io.ReadAll(io.LimitReader(tr, 512<<20)); err != nil {
					rc.Close()
					return nil, err
				}
			}
		}
		rc.Close()
	}
	if found == nil {
		return nil, fmt.Errorf("no /%s in the image", BinaryPath)
	}
	return found, nil
}

type binFlags map[string]string

func (b binFlags) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binFlags) Set(s string) error {
	p, f, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want PLATFORM=FILE, not %q", s)
	}
	b[p] = f
	return nil
}

func main() {
	bins := binFlags{}
	var repo, extract, out, created string
	var insecure bool
	var m Meta
	flag.Var(bins, "bin", "PLATFORM=FILE: a static linux binary (repeatable)")
	flag.StringVar(&repo, "repo", "", "repository to push to (REGISTRY/NAME[:TAG]); with --extract, the image to read")
	flag.StringVar(&m.Version, "version", "", "org.opencontainers.image.version")
	flag.StringVar(&m.Revision, "revision", "", "org.opencontainers.image.revision (commit)")
	flag.StringVar(&m.Source, "source", "https://github.com/trustfabric/trustfabric", "org.opencontainers.image.source")
	flag.StringVar(&created, "created", "", "creation time, RFC 3339 (default $SOURCE_DATE_EPOCH, else now)")
	flag.BoolVar(&insecure, "insecure", false, "plain HTTP to the registry")
	flag.StringVar(&extract, "extract", "", "PLATFORM: write that platform's binary from --repo to --out instead of building")
	flag.StringVar(&out, "out", "", "with --extract: the file to write (mode 0755)")
	flag.Parse()
	if err := run(repo, extract, out, created, insecure, bins, m); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(repo, extract, out, created string, insecure bool, bins binFlags, m Meta) error {
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	if extract != "" {
		ref, err := name.ParseReference(repo, nopts...)
		if err != nil {
			return err
		}
		plat, err := v1.ParsePlatform(extract)
		if err != nil {
			return err
		}
		img, err := remote.Image(ref, remote.WithPlatform(*plat), remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil {
			return err
		}
		b, err := Extract(img)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o755)
	}
	switch {
	case created != "":
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return fmt.Errorf("--created: %w", err)
		}
		m.Created = t
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		var secs int64
		if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &secs); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		m.Created = time.Unix(secs, 0)
	default:
		m.Created = time.Now()
	}
	binaries := map[string][]byte{}
	for p, f := range bins {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		binaries[p] = b
	}
	var ca []byte
	for _, f := range caFiles {
		if b, err := os.ReadFile(f); err == nil {
			ca = b
			break
		}
	}
	idx, err := Index(binaries, ca, m)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(repo, nopts...)
	if err != nil {
		return err
	}
	// Credentials: the Docker config (docker login), as crane and ko use.
	if err := remote.WriteIndex(tag, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", tag.Context().Name(), d)
	return nil
}
