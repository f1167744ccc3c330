package spiffe

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestUnavailable(t *testing.T) {
	t.Setenv(EnvSocket, "")
	if _, err := (&Source{}).Token(context.Background(), "aud"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no socket: err = %v, want ErrUnavailable", err)
	}
	// A socket path nobody listens on: the Workload API call fails cleanly.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := &Source{Addr: "unix://" + filepath.Join(t.TempDir(), "agent.sock")}
	if _, _, err := s.WIT(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dead socket: err = %v, want ErrUnavailable", err)
	}
	if !Detect(func(string) string { return "unix:///x" }) || Detect(func(string) string { return "" }) {
		t.Error("Detect does not follow SPIFFE_ENDPOINT_SOCKET")
	}
}
