package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// attestEnv starts the in-process environment and puts its GitHub runner
// variables in the process environment (the CLI reads os.Getenv).
func attestEnv(t *testing.T) *servertest.Env {
	t.Helper()
	env, err := servertest.Start(t.Context(), servertest.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	return env
}

func TestAttestCommand(t *testing.T) {
	env := attestEnv(t)
	stmt := filepath.Join(t.TempDir(), "s.cose")

	t.Run("text", func(t *testing.T) {
		out := mustRun(t, "attest", env.ImageTag, "--ts", env.TSURL, "--identity-server", env.IdentityURL, "--statement-out", stmt)
		for _, want := range []string{"ok     identity", "ok     provenance", "ok     sign", "ok     register", "ok     attach",
			"entry id:", "log index:", "referrer digest: sha256:", "oci://" + env.Image} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if fi, err := os.Stat(stmt); err != nil || fi.Size() == 0 {
			t.Errorf("--statement-out: %v", err)
		}
		if o, _ := os.ReadFile(env.Getenv("GITHUB_OUTPUT")); !strings.Contains(string(o), "referrer-digest<<") {
			t.Errorf("GITHUB_OUTPUT lacks referrer-digest:\n%s", o)
		}
	})

	t.Run("json", func(t *testing.T) {
		code, out, errOut := tf(t, "attest", env.Image, "--ts", env.TSURL, "--identity-server", env.IdentityURL, "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var res struct {
			EntryID, ReferrerDigest, Subject string
			LogIndex, TreeSize               uint64
			Steps                            []struct{ Name string }
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("stdout is not the JSON result: %v\n%s", err, out)
		}
		if len(res.EntryID) != 64 || !strings.HasPrefix(res.ReferrerDigest, "sha256:") || res.TreeSize == 0 || len(res.Steps) != 5 {
			t.Errorf("result = %+v", res)
		}
		if !strings.Contains(errOut, "register") {
			t.Errorf("steps not printed on stderr in json mode:\n%s", errOut)
		}
	})

	t.Run("unreachable ts", func(t *testing.T) {
		before, _ := os.ReadFile(env.Getenv("GITHUB_OUTPUT"))
		code, _, errOut := tf(t, "attest", env.Image, "--ts", "http://127.0.0.1:1", "--identity-server", env.IdentityURL)
		if code != exitUsage || !strings.Contains(errOut, "register") {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		if after, _ := os.ReadFile(env.Getenv("GITHUB_OUTPUT")); len(after) != len(before) {
			t.Errorf("a failed run set step outputs:\n%s", after[len(before):])
		}
		if sum, _ := os.ReadFile(env.Getenv("GITHUB_STEP_SUMMARY")); !strings.Contains(string(sum), "attest failed") {
			t.Errorf("summary does not report the failure:\n%s", sum)
		}
	})

	// A CycloneDX SBOM is signed as it is (--content-type), registered and
	// attached with its media type.
	t.Run("sbom", func(t *testing.T) {
		sbom := filepath.Join(t.TempDir(), "bom.json")
		if err := os.WriteFile(sbom, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := tf(t, "attest", env.Image, "--ts", env.TSURL, "--identity-server", env.IdentityURL, "--output", "json",
			"--predicate", sbom, "--content-type", "application/vnd.cyclonedx+json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var res struct{ ContentType, PredicateType, ReferrerDigest string }
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.ContentType != "application/vnd.cyclonedx+json" || res.PredicateType != "" {
			t.Fatalf("result %+v %v", res, err)
		}
		js := mustRun(t, "discover", env.Image, "--output", "json")
		if !strings.Contains(js, `"contentType": "application/vnd.cyclonedx+json"`) || !strings.Contains(js, res.ReferrerDigest) {
			t.Errorf("discover: %s", js)
		}
		// Not JSON under a JSON content type: refused before signing.
		if err := os.WriteFile(sbom, []byte("bomFormat: CycloneDX"), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := tf(t, "attest", env.Image, "--ts", env.TSURL, "--identity-server", env.IdentityURL,
			"--predicate", sbom, "--content-type", "application/vnd.cyclonedx+json"); code != exitUsage || !strings.Contains(errOut, "content type") {
			t.Errorf("non-JSON SBOM: exit %d %s", code, errOut)
		}
	})

	// A DSSE envelope given as the predicate is never carried unchecked:
	// refused without a key, refused with the wrong key, attested with the
	// key that signed it.
	t.Run("dsse predicate", func(t *testing.T) {
		dir := t.TempDir()
		envFile, key := dsseEnvelope(t, dir, env.Image)
		args := []string{"attest", env.Image, "--ts", env.TSURL, "--identity-server", env.IdentityURL, "--predicate", envFile}
		if code, _, errOut := tf(t, args...); code != exitUsage || !strings.Contains(errOut, "--predicate-key") {
			t.Errorf("envelope without a key: exit %d %s", code, errOut)
		}
		_, otherKey := dsseEnvelope(t, t.TempDir(), env.Image)
		if code, _, errOut := tf(t, append(args, "--predicate-key", otherKey)...); code != exitUsage || !strings.Contains(errOut, "signature does not verify") {
			t.Errorf("envelope with another key: exit %d %s", code, errOut)
		}
		if code, _, errOut := tf(t, append(args, "--predicate-key", key)...); code != 0 {
			t.Errorf("envelope with its key: exit %d %s", code, errOut)
		}
		// `trustfabric provenance --predicate` applies the same rule.
		prov := []string{"provenance", "--subject", env.Image, "--predicate", envFile, "--out", filepath.Join(dir, "p.json")}
		if code, _, errOut := tf(t, prov...); code != exitUsage || !strings.Contains(errOut, "--predicate-key") {
			t.Errorf("provenance with an envelope and no key: exit %d %s", code, errOut)
		}
		mustRun(t, append(prov, "--predicate-key", key)...)
	})

	t.Run("usage", func(t *testing.T) {
		if code, _, _ := tf(t, "attest", env.Image, "--identity-server", env.IdentityURL); code != exitUsage {
			t.Errorf("missing --ts: exit %d", code)
		}
		if code, _, _ := tf(t, "attest", env.Image, "--ts", env.TSURL, "--identity-server", env.IdentityURL, "--output", "yaml"); code != exitUsage {
			t.Errorf("bad --output: exit %d", code)
		}
	})
}
