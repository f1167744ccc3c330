package credential

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

// interopDir is where .ci/run installs devtools/sdjwt-interop's packages
// (outside the clone): $TRUSTFABRIC_SDJWT_INTEROP_DIR, else
// ~/.cache/trustfabric/sdjwt-interop.
func interopDir(t *testing.T) string {
	if d := os.Getenv("TRUSTFABRIC_SDJWT_INTEROP_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skipf("sdjwt interop: no home directory: %v", err)
	}
	return filepath.Join(home, ".cache", "trustfabric", "sdjwt-interop")
}

// TestInteropSDJWTVC verifies a credential and a presentation made here with
// an independent implementation, the @sd-jwt/sd-jwt-vc npm package (run
// through devtools/sdjwt-interop/verify.cjs). It skips, saying how to
// install it, when the package is absent; .ci/run installs it and sets
// TRUSTFABRIC_SDJWT_INTEROP_REQUIRED=1, which turns the skip into a failure.
func TestInteropSDJWTVC(t *testing.T) {
	dir := interopDir(t)
	modules := filepath.Join(dir, "node_modules")
	_, statErr := os.Stat(filepath.Join(modules, "@sd-jwt", "sd-jwt-vc", "package.json"))
	node, nodeErr := exec.LookPath("node")
	if statErr != nil || nodeErr != nil {
		msg := "sdjwt interop: @sd-jwt/sd-jwt-vc is not installed in " + dir + " (or node is missing); install it with: mkdir -p " + dir + " && cp devtools/sdjwt-interop/package.json " + dir + " && npm install --prefix " + dir + " (as .ci/run does)"
		if os.Getenv("TRUSTFABRIC_SDJWT_INTEROP_REQUIRED") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "devtools", "sdjwt-interop", "verify.cjs")

	issuer, _ := keys.Generate(cose.AlgorithmES256)
	holder, _ := keys.Generate(cose.AlgorithmES256)
	tmp := t.TempDir()
	pub, err := issuer.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	issuerFile := filepath.Join(tmp, "issuer.jwk")
	if err := os.WriteFile(issuerFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	cred, err := Issue(allowed(), issuer, holder.Public(), WithIssuer("https://issuer.example"))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := cred.Select([]string{ClaimBuilderID, ClaimSourceRef, "results.0"})
	if err != nil {
		t.Fatal(err)
	}
	pres, err := sel.Present(holder, sdjwt.Presentation{Audience: "https://verifier.example", Nonce: "n-42"})
	if err != nil {
		t.Fatal(err)
	}

	run := func(name, token string, args ...string) (map[string]any, map[string]any, error) {
		f := filepath.Join(tmp, name)
		if err := os.WriteFile(f, []byte(token), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, append([]string{script, issuerFile, f}, args...)...)
		cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
		out, err := cmd.Output()
		if err != nil {
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				t.Logf("%s: %s", name, ee.Stderr)
			}
			return nil, nil, err
		}
		var res struct {
			Payload map[string]any `json:"payload"`
			KB      map[string]any `json:"kb"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return res.Payload, res.KB, nil
	}

	// The holder's credential, with every disclosure.
	payload, _, err := run("credential", cred.String())
	if err != nil {
		t.Fatalf("@sd-jwt/sd-jwt-vc refused our credential: %v", err)
	}
	for _, c := range []string{ClaimArtifactDigest, ClaimPolicy, ClaimBuilderID, ClaimSourceCommit, ClaimWorkload, ClaimLogIndex, ClaimResults, "vct", "cnf"} {
		if _, ok := payload[c]; !ok {
			t.Errorf("credential: %s missing in @sd-jwt/sd-jwt-vc's view", c)
		}
	}

	// The presentation: the same claims as our verifier sees, and its KB-JWT.
	payload, kb, err := run("presentation", pres.String(), "n-42", "https://verifier.example")
	if err != nil {
		t.Fatalf("@sd-jwt/sd-jwt-vc refused our presentation: %v", err)
	}
	ours, err := sdjwt.Verify(pres, keys.Set{issuer.Public()})
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for k := range payload {
		got = append(got, k)
	}
	for k := range ours.Claims {
		want = append(want, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("claims seen by @sd-jwt/sd-jwt-vc %v, by us %v", got, want)
	}
	if kb == nil || kb["sd_hash"] != pres.SDHash() || kb["nonce"] != "n-42" {
		t.Errorf("key binding seen by @sd-jwt/sd-jwt-vc: %v", kb)
	}

	// And it refuses what we refuse: a tampered sd_hash input.
	tampered := &sdjwt.SDJWT{IssuerJWT: pres.IssuerJWT, Disclosures: pres.Disclosures[:1], KeyBinding: pres.KeyBinding}
	if _, _, err := run("tampered", tampered.String(), "n-42"); err == nil {
		t.Error("@sd-jwt/sd-jwt-vc accepted a presentation with a disclosure removed after key binding")
	}
}
