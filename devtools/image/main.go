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
// prints REPO@sha256:… of the index.
//
// With --shell PLATFORM=BUSYBOX (a static busybox, e.g. from Debian's
// busybox-static package) and --shell-repo REPO:TAG it also builds and pushes
// the shell variant, for CI systems that run a job's script through a shell
// (GitLab CI): the same layers plus /bin/busybox with relative symlinks for
// the applets a job script needs (sh, mkdir, mktemp, base64, …), no
// entrypoint and /bin/sh as command; it prints that index's REPO@sha256:… on
// a second line. Only the platforms given a busybox are in the shell index.
//
// With --extract PLATFORM --out FILE it
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
	"path/filepath"
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
	link string // symlink target
	data []byte
	uid  int
}

// tarLayer makes an uncompressed-tar layer with fixed mtimes (gzip'd by ggcr).
func tarLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
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

// ShellApplets are the busybox applets the shell variant links in /bin: what
// a CI job's script and the GitLab runner's own job script use.
var ShellApplets = []string{"sh", "ash", "base64", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "echo", "env",
	"false", "find", "grep", "head", "id", "ln", "ls", "mkdir", "mktemp", "mv", "printf", "pwd", "rm", "rmdir", "sed", "sleep",
	"sort", "tail", "tee", "test", "[", "touch", "tr", "true", "uname", "wc", "xargs"}

// ShellLayer puts a static busybox at /bin/busybox with a relative symlink
// per applet of ShellApplets.
func ShellLayer(busybox []byte, mtime time.Time) (v1.Layer, error) {
	es := []entry{{name: "bin", mode: 0o755, dir: true}, {name: "bin/busybox", mode: 0o755, data: busybox}}
	for _, a := range ShellApplets {
		es = append(es, entry{name: "bin/" + a, mode: 0o777, link: "busybox"})
	}
	return tarLayer(es, mtime)
}

// Image builds one platform's image from a static binary. With a shell layer
// (ShellLayer) it is the shell variant: no entrypoint, /bin/sh as command.
func Image(platform v1.Platform, base v1.Layer, binary []byte, m Meta, shell ...v1.Layer) (v1.Image, error) {
	bin, err := tarLayer([]entry{{name: "usr", mode: 0o755, dir: true}, {name: "usr/local", mode: 0o755, dir: true},
		{name: "usr/local/bin", mode: 0o755, dir: true}, {name: BinaryPath, mode: 0o755, data: binary}}, m.Created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, append([]v1.Layer{base, bin}, shell...)...)
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
	if len(shell) > 0 {
		cf.Config.Entrypoint, cf.Config.Cmd = nil, []string{"/bin/sh"}
	}
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
	return index(binaries, nil, ca, m)
}

// ShellIndex builds the shell variant's index: one image per platform that
// has both a binary and a static busybox.
func ShellIndex(binaries, busyboxes map[string][]byte, ca []byte, m Meta) (v1.ImageIndex, error) {
	if len(busyboxes) == 0 {
		return nil, errors.New("no shell: give --shell linux/amd64=BUSYBOX …")
	}
	for p := range busyboxes {
		if _, ok := binaries[p]; !ok {
			return nil, fmt.Errorf("--shell %s: no --bin for that platform", p)
		}
	}
	return index(binaries, busyboxes, ca, m)
}

func index(binaries, busyboxes map[string][]byte, ca []byte, m Meta) (v1.ImageIndex, error) {
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
		var shell []v1.Layer
		if busyboxes != nil {
			bb, ok := busyboxes[p]
			if !ok {
				continue
			}
			l, err := ShellLayer(bb, m.Created)
			if err != nil {
				return nil, err
			}
			shell = append(shell, l)
		}
		img, err := Image(*plat, base, binaries[p], m, shell...)
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

// ExtractTree writes the image's file system (directories, regular files and
// symlinks of every layer, later layers winning) under dir, so that .ci/run
// can run a shell variant's busybox and CLI as the image has them. Entries
// that would land outside dir are refused.
func ExtractTree(img v1.Image, dir string) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		err = extractLayer(tar.NewReader(rc), dir)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func extractLayer(tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
		if rel == "." {
			continue
		}
		if !filepath.IsLocal(rel) || (h.Typeflag == tar.TypeSymlink && !filepath.IsLocal(filepath.Join(filepath.Dir(rel), h.Linkname))) {
			return fmt.Errorf("layer entry %q leaves the root", h.Name)
		}
		p := filepath.Join(dir, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			_ = os.Remove(p)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(io.LimitReader(tr, 512<<20)); err == nil {
				err = os.WriteFile(p, b, os.FileMode(h.Mode)&0o755|0o600)
			}
		}
		if err != nil {
			return err
		}
	}
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
	bins, shells := binFlags{}, binFlags{}
	var repo, shellRepo, extract, out, rootfs, created string
	var insecure bool
	var m Meta
	flag.Var(bins, "bin", "PLATFORM=FILE: a static linux binary (repeatable)")
	flag.StringVar(&repo, "repo", "", "repository to push to (REGISTRY/NAME[:TAG]); with --extract, the image to read")
	flag.Var(shells, "shell", "PLATFORM=FILE: a static busybox for the shell variant (repeatable; with --shell-repo)")
	flag.StringVar(&shellRepo, "shell-repo", "", "where to push the shell variant (REGISTRY/NAME:TAG)")
	flag.StringVar(&m.Version, "version", "", "org.opencontainers.image.version")
	flag.StringVar(&m.Revision, "revision", "", "org.opencontainers.image.revision (commit)")
	flag.StringVar(&m.Source, "source", "https://github.com/trustfabric/trustfabric", "org.opencontainers.image.source")
	flag.StringVar(&created, "created", "", "creation time, RFC 3339 (default $SOURCE_DATE_EPOCH, else now)")
	flag.BoolVar(&insecure, "insecure", false, "plain HTTP to the registry")
	flag.StringVar(&extract, "extract", "", "PLATFORM: write that platform's binary from --repo to --out instead of building")
	flag.StringVar(&out, "out", "", "with --extract: the file to write (mode 0755)")
	flag.StringVar(&rootfs, "rootfs", "", "with --extract: write the image's whole file system under this directory instead of --out")
	flag.Parse()
	if (len(shells) == 0) != (shellRepo == "") {
		fmt.Fprintln(os.Stderr, "image: --shell and --shell-repo go together")
		os.Exit(2)
	}
	if err := run(repo, shellRepo, extract, out, rootfs, created, insecure, bins, shells, m); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(repo, shellRepo, extract, out, rootfs, created string, insecure bool, bins, shells binFlags, m Meta) error {
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
		if rootfs != "" {
			return ExtractTree(img, rootfs)
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
	binaries, err := readFiles(bins)
	if err != nil {
		return err
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
	if err := push(repo, idx, nopts); err != nil {
		return err
	}
	if shellRepo == "" {
		return nil
	}
	busyboxes, err := readFiles(shells)
	if err != nil {
		return err
	}
	sidx, err := ShellIndex(binaries, busyboxes, ca, m)
	if err != nil {
		return err
	}
	return push(shellRepo, sidx, nopts)
}

func readFiles(files binFlags) (map[string][]byte, error) {
	out := map[string][]byte{}
	for p, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out[p] = b
	}
	return out, nil
}

// push writes idx to repo (a tag) and prints REPO@DIGEST.
func push(repo string, idx v1.ImageIndex, nopts []name.Option) error {
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
