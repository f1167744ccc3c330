// Command release builds the Trustfabric release into a folder: for each
// platform a static, reproducible binary (CGO_ENABLED=0, -trimpath, no build
// id, fixed ldflags with version, commit and date), an archive holding it with
// LICENSE, README.md and CHANGELOG.md (fixed mtimes, owners and modes), and a
// checksums.txt in `sha256sum` format over every file. Two runs on the same
// commit with the same Go produce the same bytes.
//
//	go run ./devtools/release --version v1.2.3 --out dist
//
// Once the container image is pushed, the same command with --pin-image and
// --pin-shell-image (REPOSITORY:TAG@sha256:…, what devtools/image prints)
// writes the Tekton and GitLab manifests into --out as release assets, with
// the image's placeholder digest replaced (see pin.go):
//
//	go run ./devtools/release --out dist --pin-image ghcr.io/trustfabric/trustfabric:v1.2.3@sha256:… \
//	  --pin-shell-image ghcr.io/trustfabric/trustfabric:v1.2.3-shell@sha256:…
//
// .ci/run runs it as a dry run; .github/workflows/release.yml runs it on a tag.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Platforms are the release's GOOS/GOARCH pairs.
var Platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// ExtraFiles go into every archive next to the binary.
var ExtraFiles = []string{"LICENSE", "README.md", "CHANGELOG.md"}

var (
	// ErrBadVersion: the version is not vMAJOR.MINOR.PATCH[-PRERELEASE].
	ErrBadVersion = errors.New("version must look like v1.2.3 or v1.2.3-rc.1")
	// ErrBadPlatform: a platform is not GOOS/GOARCH of the release.
	ErrBadPlatform = errors.New("unsupported platform")
)

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// Config describes one release build.
type Config struct {
	Root      string    // the module root (holds go.mod)
	Out       string    // output folder, created
	Version   string    // vX.Y.Z
	Commit    string    // full commit hash
	Date      time.Time // build date: the commit time, so rebuilding gives the same bytes
	Platforms []string  // GOOS/GOARCH; default Platforms
}

// Asset is one file of the release.
type Asset struct {
	Name   string
	SHA256 string
}

// Build builds every platform into cfg.Out and writes checksums.txt.
func Build(cfg Config) ([]Asset, error) {
	if !versionRE.MatchString(cfg.Version) {
		return nil, fmt.Errorf("%w: %q", ErrBadVersion, cfg.Version)
	}
	if cfg.Date.IsZero() {
		return nil, errors.New("build date missing: give --date or build from a git checkout")
	}
	plats := cfg.Platforms
	if len(plats) == 0 {
		plats = Platforms
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	var assets []Asset
	for _, p := range plats {
		a, err := buildPlatform(cfg, p)
		if err != nil {
			return nil, err
		}
		assets = append(assets, a...)
	}
	sort.Slice(assets, func(i, j int) bool { return assets[i].Name < assets[j].Name })
	var sums strings.Builder
	for _, a := range assets {
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Name)
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, "checksums.txt"), []byte(sums.String()), 0o644); err != nil {
		return nil, err
	}
	return assets, nil
}

// AssetName is the bare binary's name, the one actions/lib/install.sh downloads.
func AssetName(version, goos, goarch string) string {
	n := fmt.Sprintf("trustfabric_%s_%s_%s", version, goos, goarch)
	if goos == "windows" {
		n += ".exe"
	}
	return n
}

func buildPlatform(cfg Config, platform string) ([]Asset, error) {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok || !contains(Platforms, platform) {
		return nil, fmt.Errorf("%w: %q (want one of %s)", ErrBadPlatform, platform, strings.Join(Platforms, ", "))
	}
	bin := AssetName(cfg.Version, goos, goarch)
	binPath := filepath.Join(cfg.Out, bin)
	ldflags := fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.commit=%s -X main.date=%s",
		cfg.Version, cfg.Commit, cfg.Date.UTC().Format(time.RFC3339))
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", binPath, "./cmd/trustfabric")
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-buildvcs=false -mod=readonly", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", platform, err, out)
	}
	binBytes, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	exe := "trustfabric"
	if goos == "windows" {
		exe += ".exe"
	}
	stem := strings.TrimSuffix(bin, ".exe")
	files := []File{{Name: stem + "/" + exe, Mode: 0o755, Data: binBytes}}
	for _, f := range ExtraFiles {
		b, err := os.ReadFile(filepath.Join(cfg.Root, f))
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", platform, err)
		}
		files = append(files, File{Name: stem + "/" + f, Mode: 0o644, Data: b})
	}
	var archive bytes.Buffer
	name := stem + ".tar.gz"
	if goos == "windows" {
		name = stem + ".zip"
		err = WriteZip(&archive, files, cfg.Date)
	} else {
		err = WriteTarGz(&archive, files, cfg.Date)
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, name), archive.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return []Asset{{bin, digest(binBytes)}, {name, digest(archive.Bytes())}}, nil
}

// File is one archive member.
type File struct {
	Name string
	Mode int64
	Data []byte
}

// WriteTarGz writes files as a gzip'd tar with every timestamp set to mtime,
// owner root:root and no user or group names: the same input gives the same bytes.
func WriteTarGz(w io.Writer, files []File, mtime time.Time) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: f.Mode, Size: int64(len(f.Data)),
			ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// WriteZip writes files as a zip with every timestamp set to mtime.
func WriteZip(w io.Writer, files []File, mtime time.Time) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: mtime.UTC().Truncate(time.Second)}
		hdr.SetMode(os.FileMode(f.Mode))
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := fw.Write(f.Data); err != nil {
			return err
		}
	}
	return zw.Close()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// gitInfo reads the commit and its committer time from the checkout.
func gitInfo(root string) (string, time.Time, error) {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("git log: %w", err)
	}
	var hash string
	var secs int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%s %d", &hash, &secs); err != nil {
		return "", time.Time{}, fmt.Errorf("git log output %q: %w", out, err)
	}
	return hash, time.Unix(secs, 0).UTC(), nil
}

func main() {
	var cfg Config
	var date, platforms, pinImage, pinShell string
	flag.StringVar(&cfg.Version, "version", "", "release version vX.Y.Z (required)")
	flag.StringVar(&cfg.Out, "out", "dist", "output folder")
	flag.StringVar(&cfg.Commit, "commit", "", "commit hash (default: git HEAD)")
	flag.StringVar(&date, "date", "", "build date, RFC 3339 (default: HEAD's commit time, else $SOURCE_DATE_EPOCH)")
	flag.StringVar(&platforms, "platforms", strings.Join(Platforms, ","), "comma-separated GOOS/GOARCH list")
	flag.StringVar(&cfg.Root, "root", ".", "module root")
	flag.StringVar(&pinImage, "pin-image", "", "instead of building: write the CI manifests into --out naming this image (REPOSITORY:TAG@sha256:…)")
	flag.StringVar(&pinShell, "pin-shell-image", "", "with --pin-image: the shell variant, for the GitLab components")
	flag.Parse()
	if pinImage != "" || pinShell != "" {
		written, err := PinManifests(cfg.Root, cfg.Out, pinImage, pinShell)
		if err != nil {
			fmt.Fprintln(os.Stderr, "release:", err)
			os.Exit(1)
		}
		for _, w := range written {
			fmt.Println(w)
		}
		return
	}
	if err := mainErr(&cfg, date, platforms); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func mainErr(cfg *Config, date, platforms string) error {
	cfg.Platforms = strings.Split(platforms, ",")
	if cfg.Commit == "" || date == "" {
		h, t, err := gitInfo(cfg.Root)
		switch {
		case err == nil:
			if cfg.Commit == "" {
				cfg.Commit = h
			}
			if date == "" {
				cfg.Date = t
			}
		case os.Getenv("SOURCE_DATE_EPOCH") != "" && date == "":
			var secs int64
			if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &secs); err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
			}
			cfg.Date = time.Unix(secs, 0).UTC()
		case date == "":
			return fmt.Errorf("no --date and %w", err)
		}
	}
	if date != "" {
		t, err := time.Parse(time.RFC3339, date)
		if err != nil {
			return fmt.Errorf("--date: %w", err)
		}
		cfg.Date = t
	}
	assets, err := Build(*cfg)
	if err != nil {
		return err
	}
	for _, a := range assets {
		fmt.Printf("%s  %s\n", a.SHA256, a.Name)
	}
	fmt.Printf("wrote %d files and checksums.txt to %s\n", len(assets), cfg.Out)
	return nil
}
