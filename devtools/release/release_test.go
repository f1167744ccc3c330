package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var testDate = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testFiles() []File {
	return []File{{Name: "tf/trustfabric", Mode: 0o755, Data: []byte("binary")}, {Name: "tf/LICENSE", Mode: 0o644, Data: []byte("Apache")}}
}

func TestTarGzDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteTarGz(&a, testFiles(), testDate); err != nil {
		t.Fatal(err)
	}
	if err := WriteTarGz(&b, testFiles(), testDate.Add(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of the same files differ")
	}
	gz, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	if !gz.ModTime.IsZero() {
		t.Errorf("gzip header carries a time: %v", gz.ModTime)
	}
	tr := tar.NewReader(gz)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != 2 {
				t.Fatalf("%d entries, want 2", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want := testFiles()[i]
		if h.Name != want.Name || h.Mode != want.Mode || !h.ModTime.Equal(testDate) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("entry %d: %+v", i, h)
		}
	}
}

func TestZipDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteZip(&a, testFiles(), testDate); err != nil {
		t.Fatal(err)
	}
	if err := WriteZip(&b, testFiles(), testDate); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of the same files differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(a.Bytes()), int64(a.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 2 || zr.File[0].Name != "tf/trustfabric" || zr.File[0].Mode().Perm() != 0o755 || !zr.File[0].Modified.Equal(testDate) {
		t.Fatalf("zip entries: %+v", zr.File[0].FileHeader)
	}
}

func TestRefusesBadInput(t *testing.T) {
	out := t.TempDir()
	if _, err := Build(Config{Root: "../..", Out: out, Version: "1.2.3", Date: testDate}); !errors.Is(err, ErrBadVersion) {
		t.Errorf("version without v: %v", err)
	}
	if _, err := Build(Config{Root: "../..", Out: out, Version: "v1.2.3", Date: testDate, Platforms: []string{"plan9/386"}}); !errors.Is(err, ErrBadPlatform) {
		t.Errorf("plan9/386: %v", err)
	}
}

// TestBuildHost builds the release for this machine's platform twice: the
// checksums are the same (reproducible), they match the files, and the binary
// reports the injected version, commit and date.
func TestBuildHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI twice")
	}
	plat := runtime.GOOS + "/" + runtime.GOARCH
	if !contains(Platforms, plat) {
		t.Skipf("%s is not a release platform", plat)
	}
	root, _ := filepath.Abs("../..")
	cfg := Config{Root: root, Version: "v0.0.0-test.1", Commit: strings.Repeat("ab", 20), Date: testDate, Platforms: []string{plat}}
	var sums [2][]byte
	for i := range sums {
		cfg.Out = t.TempDir()
		assets, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(assets) != 2 {
			t.Fatalf("assets %v, want a binary and an archive", assets)
		}
		for _, a := range assets {
			b, err := os.ReadFile(filepath.Join(cfg.Out, a.Name))
			if err != nil {
				t.Fatal(err)
			}
			if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != a.SHA256 {
				t.Errorf("%s: checksum does not match the file", a.Name)
			}
		}
		if sums[i], err = os.ReadFile(filepath.Join(cfg.Out, "checksums.txt")); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(sums[0], sums[1]) {
		t.Fatalf("two builds differ:\n%s\n%s", sums[0], sums[1])
	}
	out, err := exec.Command(filepath.Join(cfg.Out, AssetName(cfg.Version, runtime.GOOS, runtime.GOARCH)), "version", "--output", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Version, Commit, Date, Platform string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Version != cfg.Version || got.Commit != cfg.Commit || got.Date != "2026-12-01T10:00:00Z" || got.Platform != plat {
		t.Errorf("version --output json = %+v", got)
	}
}
