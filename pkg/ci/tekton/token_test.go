package tekton

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	os.WriteFile(f, []byte("a.b.c\n"), 0o600)
	env := map[string]string{EnvTokenFile: f}
	getenv := func(k string) string { return env[k] }
	s := &Source{Getenv: getenv}
	if tok, err := s.Token(context.Background(), "aud"); err != nil || tok != "a.b.c" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	if !Detect(getenv) {
		t.Error("Detect = false with TRUSTFABRIC_TOKEN_FILE set")
	}
	os.WriteFile(f, []byte(strings.Repeat("x", MaxTokenSize+1)), 0o600)
	if _, err := s.Token(context.Background(), "aud"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("oversize: err = %v", err)
	}
	s.Path = filepath.Join(dir, "missing")
	if _, err := s.Token(context.Background(), "aud"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("missing: err = %v", err)
	}
}
