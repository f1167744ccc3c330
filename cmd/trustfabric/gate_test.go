package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// TestGateEndToEnd runs issue 6's flow through the CLI entry points: attest
// in a (fake) GitHub job, verify with a policy (allow), then the four deny
// cases, each denied at its check with the reason on stderr and exit 1.
func TestGateEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}

	stmtFile := filepath.Join(dir, "transparent.cose")
	out := mustRun(t, "attest", env.ImageTag, "--ts", env.TSURL, "--identity-server", env.IdentityURL, "--output", "json", "--statement-out", stmtFile)
	var res struct {
		EntryID        string `json:"entryId"`
		TreeSize       uint64 `json:"treeSize"`
		ReferrerDigest string `json:"referrerDigest"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("attest --output json: %v\n%s", err, out)
	}
	if len(res.EntryID) != 64 || res.TreeSize == 0 || !strings.HasPrefix(res.ReferrerDigest, "sha256:") {
		t.Fatalf("attest result %+v", res)
	}

	// The receipt verifies with the key set fetched from the service's URL.
	if out := mustRun(t, "receipt", "verify", stmtFile, "--service-key", env.TSURL); !strings.Contains(out, "valid") {
		t.Errorf("receipt verify with the service URL:\n%s", out)
	}

	policyFile, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	check := mustRun(t, "policy", "check", policyFile)
	if !strings.Contains(check, "valid") || !strings.Contains(check, "prefix spiffe://ci.example.org/github/acme/widgets") {
		t.Errorf("policy check:\n%s", check)
	}

	out = mustRun(t, "verify", env.Image, "--policy", policyFile, "--offline")
	if !strings.HasPrefix(out, "ALLOW ") || !strings.Contains(out, "ok   provenance") {
		t.Errorf("verify output:\n%s", out)
	}
	out = mustRun(t, "verify", env.ImageTag, "--policy", policyFile, "--output", "json")
	var d policy.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("verify --output json: %v\n%s", err, out)
	}
	if !d.Allowed || d.SatisfiedBy == nil || d.SatisfiedBy.EntryID != res.EntryID {
		t.Errorf("decision %+v, want allowed by entry %s", d, res.EntryID)
	}

	reg, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range quickstart.DenyCases {
		t.Run(c.Name, func(t *testing.T) {
			image, err := c.Prepare(ctx, env, reg, filepath.Join(dir, fmt.Sprintf("case%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := tf(t, "verify", image, "--policy", policyFile)
			if code != exitInvalid {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, ": "+c.Check+": ") || !strings.HasPrefix(out, "DENY ") {
				t.Errorf("stderr does not name the %s check:\n%s", c.Check, errOut)
			}
		})
	}

	// An image with no referrers is denied; a missing image and a bad policy
	// are usage errors.
	bare, err := servertest.PushRandomImage(ctx, env.RegistryHost+"/acme/bare:v1")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := tf(t, "verify", bare, "--policy", policyFile); code != exitInvalid || !strings.Contains(errOut, "no SCITT statement") {
		t.Errorf("image without referrers: exit %d\n%s", code, errOut)
	}
	if code, _, _ := tf(t, "verify", env.RegistryHost+"/acme/missing:v1", "--policy", policyFile); code != exitUsage {
		t.Errorf("missing image: exit %d, want 2", code)
	}
	if code, _, _ := tf(t, "verify", env.Image, "--policy", filepath.Join(dir, "nope.yaml")); code != exitUsage {
		t.Errorf("missing policy: exit %d, want 2", code)
	}
}
