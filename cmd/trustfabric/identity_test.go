package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/exp/bundle/witbundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/witstatement"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// identityServer starts an identity server trusting the three fakes.
func identityServer(t *testing.T, gh *oidctest.GitHub, gl *oidctest.GitLab, k8s *oidctest.Kubernetes) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	s, err := identity.New(context.Background(), identity.Config{
		TrustDomain: "ci.example.org", Issuer: srv.URL,
		Providers: []identity.ProviderConfig{
			{Type: "github", Issuer: gh.URL(), Audience: srv.URL},
			{Type: "gitlab", Issuer: gl.URL(), Audience: srv.URL},
			{Type: "kubernetes", Issuer: k8s.URL(), Audience: srv.URL, Cluster: "prod-1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s
	return srv
}

func witSVIDCheck(t *testing.T, srv *httptest.Server, witFile string) string {
	t.Helper()
	b, err := workload.FetchBundle(context.Background(), srv.URL, "ci.example.org", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := b.Marshal()
	wb, err := witbundle.Parse(spiffeid.RequireTrustDomainFromString("ci.example.org"), raw)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := workload.ReadWIT(witFile)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := witsvid.ParseAndValidate(wit, wb)
	if err != nil {
		t.Fatalf("go-spiffe rejects the WIT: %v", err)
	}
	return svid.ID.String()
}

// TestIdentityCommand is issue 4's first "Done when": with the fake GitHub
// runner endpoint and issuer (and GitLab, Kubernetes tokens) `trustfabric
// identity` obtains a WIT go-spiffe accepts against the served bundle.
func TestIdentityCommand(t *testing.T) {
	gh, _ := oidctest.NewGitHub()
	defer gh.Close()
	gl, _ := oidctest.NewGitLab()
	defer gl.Close()
	k8s, _ := oidctest.NewKubernetes()
	defer k8s.Close()
	srv := identityServer(t, gh, gl, k8s)
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }

	t.Run("github", func(t *testing.T) {
		for k, v := range gh.Env() {
			t.Setenv(k, v)
		}
		out := mustRun(t, "identity", "--server", srv.URL, "--wit-out", p("gh.wit"), "--key-out", p("gh.jwk"))
		if !strings.Contains(out, "::add-mask::") {
			t.Errorf("the token was not masked: %q", out)
		}
		if fi, err := os.Stat(p("gh.jwk")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode: %v %v", fi, err)
		}
		if id := witSVIDCheck(t, srv, p("gh.wit")); id != "spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main" {
			t.Errorf("id = %s", id)
		}
		key, err := keys.LoadPrivate(p("gh.jwk"))
		if err != nil {
			t.Fatal(err)
		}
		wit, _ := workload.ReadWIT(p("gh.wit"))
		if _, err := witstatement.Issuer(wit, key.Signer.Public()); err != nil {
			t.Fatalf("key file does not match the WIT: %v", err)
		}
	})
	t.Run("gitlab", func(t *testing.T) {
		tok, _ := gl.MintJob(oidctest.GitLabJob{}, srv.URL)
		t.Setenv("GITLAB_CI", "true")
		t.Setenv("TRUSTFABRIC_ID_TOKEN", tok)
		mustRun(t, "identity", "--server", srv.URL, "--provider", "gitlab", "--wit-out", p("gl.wit"), "--key-out", p("gl.jwk"))
		if id := witSVIDCheck(t, srv, p("gl.wit")); !strings.HasPrefix(id, "spiffe://ci.example.org/gitlab/") {
			t.Errorf("id = %s", id)
		}
	})
	t.Run("kubernetes", func(t *testing.T) {
		tok, _ := k8s.MintPod(oidctest.Pod{}, srv.URL)
		os.WriteFile(p("sa.token"), []byte(tok+"\n"), 0o600)
		mustRun(t, "identity", "--server", srv.URL, "--provider", "kubernetes", "--token-file", p("sa.token"), "--wit-out", p("k.wit"), "--key-out", p("k.jwk"))
		if id := witSVIDCheck(t, srv, p("k.wit")); id != "spiffe://ci.example.org/k8s/prod-1/ns/ci/sa/builder" {
			t.Errorf("id = %s", id)
		}
	})
	t.Run("refused", func(t *testing.T) {
		tok, _ := gl.MintJob(oidctest.GitLabJob{}, "https://wrong.example")
		t.Setenv("TRUSTFABRIC_ID_TOKEN", tok)
		code, _, _ := tf(t, "identity", "--server", srv.URL, "--provider", "gitlab", "--wit-out", p("x.wit"), "--key-out", p("x.jwk"))
		if code != exitInvalid {
			t.Fatalf("exit %d, want %d", code, exitInvalid)
		}
	})
	t.Run("usage", func(t *testing.T) {
		code, _, _ := tf(t, "identity", "--server", srv.URL, "--provider", "jenkins", "--wit-out", p("x.wit"), "--key-out", p("x.jwk"))
		if code != exitUsage {
			t.Fatalf("exit %d, want %d", code, exitUsage)
		}
	})
}
