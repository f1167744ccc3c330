package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/credential"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/sdcwt"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// credentialEnv is an attested image, its policy and the keys of an issuer
// and a holder, all through the CLI.
type credentialEnv struct {
	env                                        *servertest.Env
	dir, policy                                string
	issuerKey, issuerPub, holderKey, holderPub string
	credFile                                   string
}

func newCredentialEnv(t *testing.T) *credentialEnv {
	t.Helper()
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
	mustRun(t, "attest", env.ImageTag, "--ts", env.TSURL, "--identity-server", env.IdentityURL)
	c := &credentialEnv{env: env, dir: dir}
	if c.policy, err = quickstart.WritePolicy(dir, env); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"issuer", "holder"} {
		priv, pub := filepath.Join(dir, who+".jwk"), filepath.Join(dir, who+".pub.jwk")
		mustRun(t, "key", "generate", "--out", priv, "--public-out", pub)
		if who == "issuer" {
			c.issuerKey, c.issuerPub = priv, pub
		} else {
			c.holderKey, c.holderPub = priv, pub
		}
	}
	c.credFile = filepath.Join(dir, "credential.sd-jwt")
	out := mustRun(t, "credential", "issue", env.Image, "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub, "--out", c.credFile, "--offline", "--issuer", "https://issuer.example")
	if !strings.Contains(out, "selectively disclosable claims") {
		t.Fatalf("issue output:\n%s", out)
	}
	return c
}

func (c *credentialEnv) present(t *testing.T, name, disclose string) string {
	t.Helper()
	out := filepath.Join(c.dir, name)
	mustRun(t, "credential", "present", c.credFile, "--holder-key", c.holderKey, "--disclose", disclose, "--aud", "https://verifier.example", "--nonce", "n-1", "--out", out)
	return out
}

func readParts(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "~")
}

func writeParts(t *testing.T, path string, parts []string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(parts, "~")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCredentialRoundTrip: issue (the gate allows), present a subset,
// verify: the verifier sees exactly the disclosed claims plus the always
// disclosed ones, with the values of the attested build.
func TestCredentialRoundTrip(t *testing.T) {
	c := newCredentialEnv(t)
	pres := c.present(t, "pres", "builder_id,source_ref,registered_at")
	out := mustRun(t, "credential", "verify", pres, "--issuer-key", c.issuerPub, "--aud", "https://verifier.example", "--nonce", "n-1",
		"--require", "source_ref="+c.env.GitHub.Run().Ref, "--require", "policy.name=policy", "--output", "json")
	var v credential.Verified
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	slices.Sort(v.Disclosed)
	if want := []string{"builder_id", "registered_at", "source_ref"}; !slices.Equal(v.Disclosed, want) {
		t.Errorf("disclosed %v, want %v", v.Disclosed, want)
	}
	digest := c.env.Image[strings.LastIndexByte(c.env.Image, '@')+1:]
	if v.Claims[credential.ClaimArtifactDigest] != digest {
		t.Errorf("artifact_digest %v, want %s", v.Claims[credential.ClaimArtifactDigest], digest)
	}
	if b, _ := v.Claims[credential.ClaimBuilderID].(string); !strings.Contains(b, c.env.GitHub.Run().Repo) {
		t.Errorf("builder_id %q", b)
	}
	for _, hidden := range []string{credential.ClaimSourceCommit, credential.ClaimSourceRepository, credential.ClaimWorkload, credential.ClaimEntryID, credential.ClaimLogIndex, credential.ClaimTransparencyService, credential.ClaimTrigger, credential.ClaimArtifactName} {
		if _, ok := v.Claims[hidden]; ok {
			t.Errorf("%s is visible without being disclosed", hidden)
		}
	}
	if p, _ := v.Claims[credential.ClaimPolicy].(map[string]any); p["sha256"] == "" || p["name"] != "policy" {
		t.Errorf("policy claim %v", v.Claims[credential.ClaimPolicy])
	}
	if v.Issuer != "https://issuer.example" || v.Audience != "https://verifier.example" {
		t.Errorf("issuer %q audience %q", v.Issuer, v.Audience)
	}

	// Everything disclosed: each fact of the build is there.
	all := c.present(t, "all", "artifact_name,builder_id,source_repository,source_commit,source_ref,workload,trigger,transparency_service,entry_id,log_index,registered_at")
	out = mustRun(t, "credential", "verify", all, "--issuer-key", c.issuerPub, "--output", "json")
	v = credential.Verified{}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	run := c.env.GitHub.Run()
	for name, want := range map[string]string{
		credential.ClaimSourceRepository:    "https://github.com/" + run.Owner + "/" + run.Repo,
		credential.ClaimTransparencyService: c.env.TSURL,
		credential.ClaimTrigger:             run.EventName,
	} {
		if got := fmt.Sprint(v.Claims[name]); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if w, _ := v.Claims[credential.ClaimWorkload].(string); !strings.HasPrefix(w, "spiffe://") {
		t.Errorf("workload %q", w)
	}
	if len(fmt.Sprint(v.Claims[credential.ClaimSourceCommit])) != 40 || len(fmt.Sprint(v.Claims[credential.ClaimEntryID])) != 64 {
		t.Errorf("commit %v entry %v", v.Claims[credential.ClaimSourceCommit], v.Claims[credential.ClaimEntryID])
	}

	// Text output prints the claims.
	if out := mustRun(t, "credential", "verify", pres, "--issuer-key", c.issuerPub); !strings.HasPrefix(out, "VALID credential from https://issuer.example") || !strings.Contains(out, "  source_ref: ") {
		t.Errorf("text output:\n%s", out)
	}
	// Asking for a claim the credential does not have is a usage error.
	if code, _, _ := tf(t, "credential", "present", c.credFile, "--holder-key", c.holderKey, "--disclose", "runner_name", "--aud", "a", "--nonce", "n", "--out", filepath.Join(c.dir, "x")); code != exitUsage {
		t.Errorf("present of an unknown claim: exit %d, want 2", code)
	}
}

// TestCredentialRefusals: each broken presentation is refused with exit 1
// and the failing check named on stderr.
func TestCredentialRefusals(t *testing.T) {
	c := newCredentialEnv(t)
	good := c.present(t, "good", "builder_id,source_ref")
	parts := readParts(t, good) // jwt, d1, d2, kb

	// A second credential for the same image (other salts).
	other := filepath.Join(c.dir, "other.sd-jwt")
	mustRun(t, "credential", "issue", c.env.Image, "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub, "--out", other, "--offline")
	otherParts := readParts(t, other)

	tampered := slices.Clone(parts)
	tampered[1] = retarget(t, tampered[1], "https://github.com/evil/widgets")
	foreign := slices.Clone(parts)
	foreign = slices.Insert(foreign, 3, otherParts[1])
	noKB := slices.Clone(parts)
	noKB[len(noKB)-1] = ""
	// A KB-JWT of another presentation (same holder, other disclosures).
	otherPres := readParts(t, c.present(t, "other-pres", "trigger"))
	wrongKB := slices.Clone(parts)
	wrongKB[len(wrongKB)-1] = otherPres[len(otherPres)-1]

	// An expired credential: issued (through the library) two days ago for
	// one hour, from the gate's own decision.
	out := mustRun(t, "verify", c.env.Image, "--policy", c.policy, "--offline", "--output", "json")
	var d policy.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	issuer, err := keys.LoadPrivate(c.issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := keys.LoadPublic(c.holderPub)
	if err != nil {
		t.Fatal(err)
	}
	old, err := credential.Issue(&d, issuer, holder[0], credential.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) }), credential.WithValidity(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expiredCred := filepath.Join(c.dir, "expired.sd-jwt")
	writeParts(t, expiredCred, []string{old.String()})
	expired := filepath.Join(c.dir, "expired-pres")
	mustRun(t, "credential", "present", expiredCred, "--holder-key", c.holderKey, "--disclose", "builder_id", "--aud", "https://verifier.example", "--nonce", "n-1", "--out", expired)

	cases := []struct {
		name, file, check string
		extra             []string
	}{
		{"tampered disclosure", writeParts(t, filepath.Join(c.dir, "tampered"), tampered), sdjwt.CheckDisclosures, nil},
		{"disclosure of another credential", writeParts(t, filepath.Join(c.dir, "foreign"), foreign), sdjwt.CheckDisclosures, nil},
		{"missing key binding JWT", writeParts(t, filepath.Join(c.dir, "nokb"), noKB), sdjwt.CheckKeyBinding, nil},
		{"key binding JWT of another presentation", writeParts(t, filepath.Join(c.dir, "wrongkb"), wrongKB), sdjwt.CheckKeyBinding, nil},
		{"wrong audience", good, sdjwt.CheckAudience, []string{"--aud", "https://other.example"}},
		{"wrong nonce", good, sdjwt.CheckNonce, []string{"--nonce", "n-2"}},
		{"expired credential", expired, sdjwt.CheckTime, nil},
		{"unpinned issuer", good, sdjwt.CheckSignature, []string{"--issuer-key", c.holderPub}},
		{"required claim not disclosed", good, "require", []string{"--require", "source_commit=abc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"credential", "verify", tc.file, "--aud", "https://verifier.example", "--nonce", "n-1"}
			if !slices.Contains(tc.extra, "--issuer-key") {
				args = append(args, "--issuer-key", c.issuerPub)
			}
			args = append(args, tc.extra...)
			code, out, errOut := tf(t, args...)
			if code != exitInvalid {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, "invalid: "+tc.check+": ") {
				t.Errorf("stderr does not name the %s check:\n%s", tc.check, errOut)
			}
		})
	}
	// The untouched presentation verifies, so each case fails for its own reason.
	mustRun(t, "credential", "verify", good, "--issuer-key", c.issuerPub, "--aud", "https://verifier.example", "--nonce", "n-1")
}

// TestCredentialIssueDenied: credential issue runs the gate first and
// refuses, with the gate's reasons, each image the gate denies.
func TestCredentialIssueDenied(t *testing.T) {
	c := newCredentialEnv(t)
	reg, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	for i, dc := range quickstart.DenyCases {
		t.Run(dc.Name, func(t *testing.T) {
			image, err := dc.Prepare(context.Background(), c.env, reg, filepath.Join(c.dir, fmt.Sprintf("case%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(c.dir, fmt.Sprintf("denied%d.sd-jwt", i))
			code, stdout, errOut := tf(t, "credential", "issue", image, "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub, "--out", out, "--offline")
			if code != exitInvalid {
				t.Fatalf("exit %d, want 1\n%s%s", code, stdout, errOut)
			}
			if !strings.Contains(errOut, "deny: ") || !strings.Contains(errOut, ": "+dc.Check+": ") {
				t.Errorf("stderr lacks the gate's reason at the %s check:\n%s", dc.Check, errOut)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a credential was written for a denied image: %v", err)
			}
		})
	}
}

// retarget returns the disclosure with the same salt and name and another
// value.
func retarget(t *testing.T, disclosure, value string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(disclosure)
	if err != nil {
		t.Fatal(err)
	}
	var arr []any
	if err := json.Unmarshal(b, &arr); err != nil || len(arr) != 3 {
		t.Fatalf("disclosure %s: %v", b, err)
	}
	arr[2] = value
	b, _ = json.Marshal(arr)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issueCWT issues the SD-CWT form of the credential through the CLI.
func (c *credentialEnv) issueCWT(t *testing.T) string {
	t.Helper()
	file := filepath.Join(c.dir, "credential.sd-cwt")
	out := mustRun(t, "credential", "issue", c.env.Image, "--format", "sd-cwt", "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub, "--out", file, "--offline", "--issuer", "https://issuer.example")
	if !strings.Contains(out, "issued application/sd-cwt credential") {
		t.Fatalf("issue output:\n%s", out)
	}
	return file
}

// TestCredentialRoundTripCWT: the SD-CWT form through the CLI: issue,
// present a subset (an SD-KBT), verify; the verifier sees exactly the
// disclosed claims plus the always disclosed ones, as with the SD-JWT VC.
func TestCredentialRoundTripCWT(t *testing.T) {
	c := newCredentialEnv(t)
	cred := c.issueCWT(t)
	pres := filepath.Join(c.dir, "pres.kbt")
	mustRun(t, "credential", "present", cred, "--holder-key", c.holderKey, "--disclose", "builder_id,source_ref", "--aud", "https://verifier.example", "--nonce", "n-1", "--out", pres)
	out := mustRun(t, "credential", "verify", pres, "--format", "sd-cwt", "--issuer-key", c.issuerPub, "--aud", "https://verifier.example", "--nonce", "n-1",
		"--require", "source_ref="+c.env.GitHub.Run().Ref, "--require", "policy.name=policy", "--output", "json")
	var v credential.Verified
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	slices.Sort(v.Disclosed)
	if want := []string{"builder_id", "source_ref"}; !slices.Equal(v.Disclosed, want) {
		t.Errorf("disclosed %v, want %v", v.Disclosed, want)
	}
	digest := c.env.Image[strings.LastIndexByte(c.env.Image, '@')+1:]
	if v.Claims[credential.ClaimArtifactDigest] != digest {
		t.Errorf("artifact_digest %v, want %s", v.Claims[credential.ClaimArtifactDigest], digest)
	}
	if b, _ := v.Claims[credential.ClaimBuilderID].(string); !strings.Contains(b, c.env.GitHub.Run().Repo) {
		t.Errorf("builder_id %q", b)
	}
	for _, hidden := range []string{credential.ClaimSourceCommit, credential.ClaimSourceRepository, credential.ClaimWorkload, credential.ClaimEntryID, credential.ClaimLogIndex, credential.ClaimTransparencyService, credential.ClaimTrigger, credential.ClaimArtifactName, credential.ClaimRegisteredAt} {
		if _, ok := v.Claims[hidden]; ok {
			t.Errorf("%s is visible without being disclosed", hidden)
		}
	}
	if v.Issuer != "https://issuer.example" || v.Audience != "https://verifier.example" || v.Nonce != "n-1" || v.Claims["vct"] != credential.VCT {
		t.Errorf("issuer %q audience %q nonce %q vct %v", v.Issuer, v.Audience, v.Nonce, v.Claims["vct"])
	}
	// The format is recognised from the file; text output prints the claims.
	if out := mustRun(t, "credential", "verify", pres, "--issuer-key", c.issuerPub); !strings.HasPrefix(out, "VALID credential from https://issuer.example") || !strings.Contains(out, "  source_ref: ") {
		t.Errorf("text output:\n%s", out)
	}
	// An SD-CWT named as an SD-JWT is refused at the format check.
	if code, _, errOut := tf(t, "credential", "verify", pres, "--format", "sd-jwt", "--issuer-key", c.issuerPub); code != exitInvalid || !strings.Contains(errOut, "invalid: format: ") {
		t.Errorf("sd-cwt as sd-jwt: exit %d\n%s", code, errOut)
	}
}

// TestCredentialRefusalsCWT: each broken SD-CWT presentation is refused
// with exit 1 and the failing check named. Where the holder would re-sign
// (a tampered or foreign disclosure), the test re-signs the SD-KBT with the
// holder's key, so only the check under test can fail.
func TestCredentialRefusalsCWT(t *testing.T) {
	c := newCredentialEnv(t)
	cred := c.issueCWT(t)
	holder, err := keys.LoadPrivate(c.holderKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(c.dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(path string) *sdcwt.SDCWT {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sdcwt.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pres := sdcwt.Presentation{Audience: "https://verifier.example", Nonce: "n-1"}
	good := filepath.Join(c.dir, "good.kbt")
	mustRun(t, "credential", "present", cred, "--holder-key", c.holderKey, "--disclose", "builder_id,source_ref", "--aud", "https://verifier.example", "--nonce", "n-1", "--out", good)

	sel, err := load(cred).Select([]string{"builder_id", "source_ref"})
	if err != nil {
		t.Fatal(err)
	}
	// Tampered: the builder_id disclosure with another value, same salt.
	tamperedSel, _ := load(cred).Select([]string{"builder_id", "source_ref"})
	for i, d := range tamperedSel.Disclosures {
		if d.Key == credential.ClaimBuilderID {
			raw, err := cosewire.Enc.Marshal([]any{d.Salt, "https://github.com/evil/widgets/.github/workflows/x.yml@refs/heads/main", d.Key})
			if err != nil {
				t.Fatal(err)
			}
			if tamperedSel.Disclosures[i], err = sdcwt.ParseDisclosure(raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	tampered, err := tamperedSel.Present(holder, pres)
	if err != nil {
		t.Fatal(err)
	}
	// Foreign: a disclosure of a second credential for the same image.
	otherFile := filepath.Join(c.dir, "other.sd-cwt")
	mustRun(t, "credential", "issue", c.env.Image, "--format", "sd-cwt", "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub, "--out", otherFile, "--offline")
	otherSel, _ := load(otherFile).Select([]string{"trigger"})
	foreignSel, _ := load(cred).Select([]string{"builder_id", "source_ref"})
	foreignSel.Disclosures = append(foreignSel.Disclosures, otherSel.Disclosures...)
	foreign, err := foreignSel.Present(holder, pres)
	if err != nil {
		t.Fatal(err)
	}
	// A key binding token signed by another key (the issuer's).
	issuer, err := keys.LoadPrivate(c.issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	wrongKB, err := sel.Present(issuer, pres)
	if err != nil {
		t.Fatal(err)
	}
	// An expired credential: issued through the library two days ago for an
	// hour, from the gate's own decision.
	out := mustRun(t, "verify", c.env.Image, "--policy", c.policy, "--offline", "--output", "json")
	var d policy.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	old, err := credential.IssueCWT(&d, issuer, holder.Public(), credential.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) }), credential.WithValidity(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired := filepath.Join(c.dir, "expired.kbt")
	mustRun(t, "credential", "present", write("expired.sd-cwt", old.Bytes()), "--holder-key", c.holderKey, "--disclose", "builder_id", "--aud", "https://verifier.example", "--nonce", "n-1", "--out", expired)

	cases := []struct {
		name, file, check string
		extra             []string
	}{
		{"tampered disclosure", write("tampered.kbt", tampered), sdcwt.CheckDisclosures, nil},
		{"disclosure of another credential", write("foreign.kbt", foreign), sdcwt.CheckDisclosures, nil},
		{"missing key binding token", write("nokb.sd-cwt", sel.Bytes()), sdcwt.CheckKeyBinding, nil},
		{"key binding token by another key", write("wrongkb.kbt", wrongKB), sdcwt.CheckKeyBinding, nil},
		{"wrong audience", good, sdcwt.CheckAudience, []string{"--aud", "https://other.example"}},
		{"wrong nonce", good, sdcwt.CheckNonce, []string{"--nonce", "n-2"}},
		{"expired credential", expired, sdcwt.CheckTime, nil},
		{"unpinned issuer", good, sdcwt.CheckSignature, []string{"--issuer-key", c.holderPub}},
		{"required claim not disclosed", good, credential.CheckRequire, []string{"--require", "source_commit=abc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"credential", "verify", tc.file, "--aud", "https://verifier.example", "--nonce", "n-1"}
			if !slices.Contains(tc.extra, "--issuer-key") {
				args = append(args, "--issuer-key", c.issuerPub)
			}
			args = append(args, tc.extra...)
			code, out, errOut := tf(t, args...)
			if code != exitInvalid {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, "invalid: "+tc.check+": ") {
				t.Errorf("stderr does not name the %s check:\n%s", tc.check, errOut)
			}
		})
	}
	mustRun(t, "credential", "verify", good, "--issuer-key", c.issuerPub, "--aud", "https://verifier.example", "--nonce", "n-1")
}

// TestCredentialRegister: with --register the credential's issuance is
// itself registered (a hash envelope over its issuer-signed part, signed by
// the credential issuer), and credential verify --service-key checks that
// statement's receipt against the presented credential, for both formats.
func TestCredentialRegister(t *testing.T) {
	c := newCredentialEnv(t)
	ts := startServe(t, "--data", filepath.Join(c.dir, "cred-ts"), "--trust-key", c.issuerPub, "--issuer", "https://credentials-ts.example")
	otherTS := startServe(t, "--data", filepath.Join(c.dir, "other-ts"), "--issuer", "https://other-ts.example")
	for _, format := range []string{"sd-jwt", "sd-cwt"} {
		t.Run(format, func(t *testing.T) {
			p := func(n string) string { return filepath.Join(c.dir, format+"-"+n) }
			out := mustRun(t, "credential", "issue", c.env.Image, "--format", format, "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub,
				"--out", p("cred"), "--offline", "--register", "--ts", ts, "--attach")
			if !strings.Contains(out, "registered entry ") || !strings.Contains(out, "attached ") {
				t.Fatalf("issue output:\n%s", out)
			}
			// --attach: the statement is a referrer of its own type, listed
			// as such; the gate, which reads build evidence only, still allows.
			listing := mustRun(t, "discover", c.env.Image, "--artifact-type", credential.ArtifactType, "--output", "json")
			if !strings.Contains(listing, credential.ArtifactType) || !strings.Contains(listing, "urn:trustfabric:issuer:") {
				t.Errorf("discover lacks the credential's statement:\n%s", listing)
			}
			mustRun(t, "verify", c.env.Image, "--policy", c.policy, "--offline")
			stmt := p("cred.statement.cose")
			insp := mustRun(t, "inspect", stmt)
			wantCT := "application/dc+sd-jwt"
			if format == "sd-cwt" {
				wantCT = "application/sd-cwt"
			}
			if !strings.Contains(insp, wantCT) || !strings.Contains(insp, "oci://") {
				t.Errorf("statement lacks its content type %s or subject:\n%s", wantCT, insp)
			}
			mustRun(t, "credential", "present", p("cred"), "--holder-key", c.holderKey, "--disclose", "source_ref", "--aud", "https://verifier.example", "--nonce", "n-1", "--out", p("pres"))
			out = mustRun(t, "credential", "verify", p("pres"), "--issuer-key", c.issuerPub, "--service-key", ts, "--statement", stmt)
			if !strings.Contains(out, "issuance registered") {
				t.Errorf("verify output:\n%s", out)
			}

			// Refused: another service's key; the statement of another
			// credential; a statement without a receipt.
			second := p("second")
			mustRun(t, "credential", "issue", c.env.Image, "--format", format, "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub,
				"--out", second, "--offline", "--register", "--ts", ts)
			bare := p("bare.cose")
			mustRun(t, "receipt", "verify", second+".statement.cose", "--service-key", ts) // it has one
			b, err := os.ReadFile(second + ".statement.cose")
			if err != nil {
				t.Fatal(err)
			}
			stripped, err := scitt.RemoveReceipts(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bare, stripped, 0o644); err != nil {
				t.Fatal(err)
			}
			for name, args := range map[string][]string{
				"another service":                {"--service-key", otherTS, "--statement", stmt},
				"another credential's statement": {"--service-key", ts, "--statement", second + ".statement.cose"},
				"no receipt":                     {"--service-key", ts, "--statement", bare},
			} {
				code, _, errOut := tf(t, append([]string{"credential", "verify", p("pres"), "--issuer-key", c.issuerPub}, args...)...)
				if code != exitInvalid || !strings.Contains(errOut, "invalid: receipt: ") {
					t.Errorf("%s: exit %d, want 1 naming the receipt check\n%s", name, code, errOut)
				}
			}
			// A service that does not trust the issuer refuses to register:
			// exit 1, no credential written.
			code, _, errOut := tf(t, "credential", "issue", c.env.Image, "--format", format, "--policy", c.policy, "--key", c.issuerKey, "--holder-key", c.holderPub,
				"--out", p("refused"), "--offline", "--register", "--ts", otherTS)
			if code != exitInvalid {
				t.Errorf("registration refused: exit %d, want 1\n%s", code, errOut)
			}
			if _, err := os.Stat(p("refused")); !os.IsNotExist(err) {
				t.Errorf("a credential was written although its registration was refused: %v", err)
			}
		})
	}
	if code, _, _ := tf(t, "credential", "verify", c.credFile, "--issuer-key", c.issuerPub, "--service-key", ts); code != exitUsage {
		t.Errorf("--service-key without --statement: exit %d, want 2", code)
	}
}

// TestGateOnCredential: a consumer's policy that trusts no SCITT evidence,
// only a pinned credential issuer, allows the image on a presentation that
// discloses the required claims (both formats), and denies it (exit 1, the
// claims check named) when a required claim is not disclosed.
func TestGateOnCredential(t *testing.T) {
	c := newCredentialEnv(t)
	run := c.env.GitHub.Run()
	pol := filepath.Join(c.dir, "consumer.yaml")
	doc := fmt.Sprintf(`apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
credentials:
  issuers:
    - issuer: https://issuer.example
      keys: [%s]
  audience: https://deploy.example
  require:
    source_ref: [refs/heads/main]
    source_repository: ["https://github.com/%s/*"]
`, filepath.Base(c.issuerPub), run.Owner)
	if err := os.WriteFile(pol, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"sd-jwt": c.credFile, "sd-cwt": c.issueCWT(t)}
	for format, cred := range creds {
		t.Run(format, func(t *testing.T) {
			p := func(n string) string { return filepath.Join(c.dir, "gate-"+format+"-"+n) }
			mustRun(t, "credential", "present", cred, "--holder-key", c.holderKey, "--disclose", "source_ref,source_repository", "--aud", "https://deploy.example", "--nonce", "n-9", "--out", p("ok"))
			out := mustRun(t, "verify", c.env.Image, "--policy", pol, "--credential", p("ok"), "--nonce", "n-9")
			if !strings.HasPrefix(out, "ALLOW ") || !strings.Contains(out, "ok   claims") {
				t.Errorf("allow output:\n%s", out)
			}
			mustRun(t, "credential", "present", cred, "--holder-key", c.holderKey, "--disclose", "source_repository", "--aud", "https://deploy.example", "--nonce", "n-9", "--out", p("short"))
			code, out, errOut := tf(t, "verify", c.env.Image, "--policy", pol, "--credential", p("short"), "--nonce", "n-9")
			if code != exitInvalid || !strings.HasPrefix(out, "DENY ") || !strings.Contains(errOut, "deny: credential: claims: ") || !strings.Contains(errOut, "source_ref is not disclosed") {
				t.Errorf("missing required claim: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
	// The consumer's policy decides nothing on SCITT evidence.
	if code, _, errOut := tf(t, "verify", c.env.Image, "--policy", pol); code != exitUsage || !strings.Contains(errOut, "only on a credential") {
		t.Errorf("credential-only policy without --credential: exit %d\n%s", code, errOut)
	}
}
