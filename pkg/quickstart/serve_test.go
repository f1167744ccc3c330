package quickstart

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

// syncBuffer is a bytes.Buffer safe for the story written while serving.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readExports parses the export lines Run writes.
func readExports(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		vars[k] = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
	}
	return vars
}

// TestServe: with Serve, the services stay up behind env.sh until the
// context ends; then Run returns nil, the files are gone and so are the
// services.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Dir: dir, Out: &out, Serve: true})
		done <- err
	}()
	envFile := filepath.Join(dir, EnvFile)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(envFile); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before serving: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 2 minutes\n%s", envFile, out.String())
		}
	}
	vars := readExports(t, envFile)
	for _, k := range []string{"TF_REGISTRY", "TF_TS_URL", "TF_IDENTITY_SERVER", "TF_IMAGE", "TF_IMAGE_TAG", "TF_UNATTESTED_IMAGE", "TF_POLICY", "TF_GITHUB_ISSUER"} {
		if vars[k] == "" {
			t.Errorf("env.sh lacks %s", k)
		}
	}
	ci := readExports(t, filepath.Join(dir, CIEnvFile))
	if ci["ACTIONS_ID_TOKEN_REQUEST_URL"] == "" || ci["GITHUB_REPOSITORY"] == "" {
		t.Errorf("ci-env.sh lacks the runner variables: %v", ci)
	}

	// The system is live: the services answer and the gate decides.
	for _, u := range []string{vars["TF_TS_URL"] + "/.well-known/scitt-keys", "http://" + vars["TF_REGISTRY"] + "/v2/", vars["TF_GITHUB_ISSUER"] + "/.well-known/openid-configuration"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	pol, err := policy.Load(vars["TF_POLICY"])
	if err != nil {
		t.Fatal(err)
	}
	reg, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	gate, err := policy.NewVerifier(ctx, pol, policy.WithOCIClient(reg), policy.WithCacheTTL(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for img, allow := range map[string]bool{vars["TF_IMAGE"]: true, vars["TF_IMAGE_TAG"]: true, vars["TF_UNATTESTED_IMAGE"]: false} {
		d, err := gate.Verify(ctx, img)
		if err != nil {
			t.Fatalf("verify %s: %v", img, err)
		}
		if d.Allowed != allow {
			t.Errorf("verify %s: allowed %v, want %v: %v", img, d.Allowed, allow, d.Reasons)
		}
	}

	// Stop: Run returns nil, the files go, the services stop.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop within 30s of the cancel")
	}
	for _, f := range []string{EnvFile, CIEnvFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
	if resp, err := http.Get(vars["TF_TS_URL"] + "/.well-known/scitt-keys"); err == nil {
		resp.Body.Close()
		t.Errorf("the Transparency Service still answers after the stop")
	}
	if !strings.Contains(out.String(), "Stopping.") {
		t.Errorf("story lacks the stop:\n%s", out.String())
	}
}

func TestServeNeedsDir(t *testing.T) {
	if _, err := Run(context.Background(), Options{Serve: true, Out: &bytes.Buffer{}}); err == nil {
		t.Fatal("Serve without Dir accepted")
	}
}
