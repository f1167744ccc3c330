package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// TestWITStatement: a workload gets a WIT with `identity`, signs a statement
// with it (`statement sign --wit`), and the statement verifies with the
// identity bundle instead of a key; inspect shows the WIT.
func TestWITStatement(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	env, err := servertest.Start(ctx, servertest.Config{Dir: p("env")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	mustRun(t, "identity", "--server", env.IdentityURL, "--wit-out", p("wit"), "--key-out", p("key.jwk"))
	bundle, err := env.Bundle.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("bundle.json"), bundle, 0o644)
	os.WriteFile(p("prov.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`), 0o644)

	mustRun(t, "statement", "sign", "--wit", p("wit"), "--key", p("key.jwk"), "--subject", "sha256:00", "--payload", p("prov.json"), "--out", p("s.cose"))
	out := mustRun(t, "statement", "verify", p("s.cose"), "--identity-bundle", p("bundle.json"), "--trust-domain", servertest.DefaultTrustDomain, "--payload", p("prov.json"))
	if !strings.Contains(out, "valid: statement by workload spiffe://ci.example.org/github/acme/widgets") {
		t.Errorf("verify:\n%s", out)
	}
	insp := mustRun(t, "inspect", p("s.cose"))
	if !strings.Contains(insp, "wit: eyJ") {
		t.Errorf("inspect of the statement does not show the wit header:\n%s", insp)
	}
	insp = mustRun(t, "inspect", p("wit"))
	if !strings.Contains(insp, "type: wit") || !strings.Contains(insp, "verified: false") || !strings.Contains(insp, "cnf:") {
		t.Errorf("inspect of the WIT:\n%s", insp)
	}

	// Another trust domain's bundle does not verify it; a wrong --issuer is refused.
	if code, _, _ := tf(t, "statement", "verify", p("s.cose"), "--identity-bundle", p("bundle.json"), "--trust-domain", "other.example.org"); code != exitInvalid {
		t.Errorf("other trust domain: exit %d, want 1", code)
	}
	if code, _, _ := tf(t, "statement", "sign", "--wit", p("wit"), "--key", p("key.jwk"), "--issuer", "https://someone.else", "--subject", "s", "--payload", p("prov.json"), "--out", p("x.cose")); code != exitUsage {
		t.Errorf("--issuer different from the WIT's sub: exit %d, want 2", code)
	}
}
