package main

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// TestMonitorSplitViewExit: `trustfabric monitor` that followed one view of
// a log exits 1 naming the inconsistency when shown another view of it (a
// copy of the data directory that grew differently: same key, same origin),
// and keeps following the honest view.
func TestMonitorSplitViewExit(t *testing.T) {
	ctx := context.Background()
	key, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "issuer.jwk")
	if err := os.WriteFile(keyFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(dir string) (*transparency.Service, *httptest.Server) {
		pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{keyFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := transparency.Open(ctx, transparency.Options{Dir: dir, Policy: pol, Issuer: "https://ts.test"})
		if err != nil {
			t.Fatal(err)
		}
		return svc, httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
	}
	register := func(srv *httptest.Server, n int) {
		c, err := scrapi.NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			stmt, err := scitt.SignStatement(ctx, key, scitt.Claims{Issuer: "spiffe://example.org/ci/x", Subject: "s"}, []byte(rand.Text()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Register(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	dirA := t.TempDir()
	svc, srv := start(dirA)
	register(srv, 2)
	srv.Close()
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dirB := filepath.Join(t.TempDir(), "b")
	if err := os.CopyFS(dirB, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	svcA, a := start(dirA)
	svcB, b := start(dirB)
	t.Cleanup(func() {
		a.Close()
		b.Close()
		_ = svcA.Close(ctx)
		_ = svcB.Close(ctx)
	})
	register(a, 2)
	register(b, 3)

	state := filepath.Join(t.TempDir(), "state.json")
	out := mustRun(t, "monitor", "--ts", a.URL, "--state", state, "--watch", "spiffe://example.org/ci/", "--output", "json")
	if n := strings.Count(out, "\n"); n != 4 {
		t.Fatalf("%d reports, want the 4 watched entries:\n%s", n, out)
	}
	code, out, errOut := tf(t, "monitor", "--ts", b.URL, "--state", state, "--watch", "spiffe://example.org/ci/")
	if code != exitInvalid || out != "" || !strings.Contains(errOut, "trustfabric: invalid: log inconsistent with the checkpoint seen before") ||
		!strings.Contains(errOut, "does not contain the tree of size") {
		t.Fatalf("split view: exit %d\n%s%s", code, out, errOut)
	}
	register(a, 1)
	if out := mustRun(t, "monitor", "--ts", a.URL, "--state", state, "--watch", "spiffe://example.org/ci/"); strings.Count(out, "\n") != 1 {
		t.Fatalf("honest view after the refusal:\n%s", out)
	}
}
