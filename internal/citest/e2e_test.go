package citest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// TestActionsEndToEnd runs the shell steps of actions/identity, the root
// attest action and actions/verify with the fake runner, as a job would, with
// the real CLI against the in-process services of pkg/attest/attesttest: the
// Identity Server, a Transparency Service on Tessera that requires WIMSE
// headers, an olareg registry, and the fake GitHub OIDC issuer and runner
// token endpoint (the only fake). The gate must allow the attested image and
// deny one nobody attested, with the reasons as error annotations.
func TestActionsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	cli := builtCLI(t)
	if !hasCommands(t, cli, "identity", "attest", "verify") {
		t.Fatal("the built trustfabric lacks identity, attest or verify")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := servertest.Start(ctx, servertest.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	policyDir := t.TempDir()
	policyFile, err := quickstart.WritePolicy(policyDir, env)
	if err != nil {
		t.Fatal(err)
	}
	other, err := servertest.PushRandomImage(ctx, env.RegistryHost+"/acme/other:v1")
	if err != nil {
		t.Fatal(err)
	}

	root := repoRoot(t)
	jobEnv := map[string]string{}
	for k, v := range env.Vars {
		switch k {
		case "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "RUNNER_TEMP": // the fake runner's own
		default:
			jobEnv[k] = v
		}
	}
	temp := t.TempDir()
	opts := func(inputs map[string]string) RunOptions {
		inputs["cli-path"] = cli
		return RunOptions{Env: jobEnv, Inputs: inputs, RunnerTemp: temp}
	}
	repo, digest, _ := strings.Cut(env.Image, "@")

	t.Run("identity", func(t *testing.T) {
		id := run(t, filepath.Join(root, "actions", "identity"), opts(map[string]string{"identity-server": env.IdentityURL}))
		if id.ExitCode != 0 {
			t.Fatalf("exit %d", id.ExitCode)
		}
		if !strings.HasPrefix(id.Outputs["workload-id"], "spiffe://"+servertest.DefaultTrustDomain+"/github/") {
			t.Errorf("workload-id %q", id.Outputs["workload-id"])
		}
		for _, f := range []string{id.Outputs["wit-path"], id.Outputs["key-path"]} {
			info, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", f, info.Mode().Perm())
			}
		}
		wit, err := os.ReadFile(id.Outputs["wit-path"])
		if err != nil {
			t.Fatal(err)
		}
		if !contains(id.Masks, strings.TrimSpace(string(wit))) {
			t.Error("the WIT was not masked")
		}
	})

	t.Run("attest then allow", func(t *testing.T) {
		at := run(t, root, opts(map[string]string{"image": repo, "digest": digest,
			"ts-url": env.TSURL, "identity-server": env.IdentityURL}))
		if at.ExitCode != 0 {
			t.Fatalf("attest: exit %d", at.ExitCode)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(at.Outputs["entry-id"]) {
			t.Errorf("entry-id %q", at.Outputs["entry-id"])
		}
		if !regexp.MustCompile(`^[0-9]+$`).MatchString(at.Outputs["log-index"]) {
			t.Errorf("log-index %q", at.Outputs["log-index"])
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(at.Outputs["referrer-digest"]) {
			t.Errorf("referrer-digest %q", at.Outputs["referrer-digest"])
		}
		if info, err := os.Stat(at.Outputs["statement-path"]); err != nil || info.Size() == 0 {
			t.Errorf("statement-path %q: %v", at.Outputs["statement-path"], err)
		}
		if !strings.Contains(at.Summary, at.Outputs["entry-id"]) {
			t.Errorf("the summary does not show the entry id:\n%s", at.Summary)
		}

		allow := run(t, filepath.Join(root, "actions", "verify"), opts(map[string]string{
			"image": repo, "digest": digest, "policy": policyFile}))
		if allow.ExitCode != 0 || allow.Outputs["decision"] != "allow" {
			t.Fatalf("verify of the attested image: exit %d, outputs %v", allow.ExitCode, allow.Outputs)
		}
		if !strings.Contains(allow.Summary, "allowed") || !strings.Contains(allow.Summary, at.Outputs["entry-id"]) {
			t.Errorf("allow summary:\n%s", allow.Summary)
		}
	})

	t.Run("attest files then verify --file", func(t *testing.T) {
		dist := t.TempDir()
		for _, name := range []string{"app_linux_amd64.tar.gz", "app_darwin_arm64.tar.gz"} {
			if err := os.WriteFile(filepath.Join(dist, name), []byte("archive "+name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		at := run(t, root, opts(map[string]string{"subject-path": filepath.Join(dist, "*.tar.gz"),
			"ts-url": env.TSURL, "identity-server": env.IdentityURL}))
		if at.ExitCode != 0 {
			t.Fatalf("attest files: exit %d\n%s", at.ExitCode, at.Stderr)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(at.Outputs["entry-id"]) || at.Outputs["referrer-digest"] != "" {
			t.Errorf("outputs %v", at.Outputs)
		}
		for _, name := range []string{"app_linux_amd64.tar.gz", "app_darwin_arm64.tar.gz"} {
			file := filepath.Join(dist, name)
			if !strings.Contains(at.Summary, name) {
				t.Errorf("the summary does not list %s:\n%s", name, at.Summary)
			}
			out, err := exec.Command(cli, "verify", "--file", file, "--policy", policyFile, "--offline").CombinedOutput()
			if err != nil {
				t.Errorf("verify --file %s: %v\n%s", name, err, out)
			}
		}
		// Bytes nobody attested, next to a copied statement: denied (exit 1).
		tampered := filepath.Join(dist, "app_linux_amd64.tar.gz")
		if err := os.WriteFile(tampered, []byte("other bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := exec.Command(cli, "verify", "--file", tampered, "--policy", policyFile, "--offline").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("verify --file of changed bytes: %v, want exit 1", err)
		}
		// No file matches, or both an image and files: usage errors.
		none := run(t, root, opts(map[string]string{"subject-path": filepath.Join(dist, "*.zip"),
			"ts-url": env.TSURL, "identity-server": env.IdentityURL}))
		if _, ok := annotation(none, "error", "trustfabric attest"); none.ExitCode != 2 || !ok {
			t.Errorf("subject-path matching nothing: exit %d, annotations %+v", none.ExitCode, none.Annotations)
		}
		both := run(t, root, opts(map[string]string{"image": repo, "subject-path": tampered,
			"ts-url": env.TSURL, "identity-server": env.IdentityURL}))
		if both.ExitCode != 2 {
			t.Errorf("image and subject-path: exit %d", both.ExitCode)
		}
	})

	t.Run("attest failure", func(t *testing.T) {
		// Identity succeeds, registration cannot: the failure is reported,
		// and the token's ::add-mask:: line never reaches the summary or an
		// annotation.
		res := run(t, root, opts(map[string]string{"image": repo, "digest": digest,
			"ts-url": "http://127.0.0.1:1", "identity-server": env.IdentityURL}))
		if res.ExitCode == 0 {
			t.Fatal("attest to an unreachable transparency service succeeded")
		}
		if !strings.Contains(res.Stderr, "::add-mask::") {
			t.Log("the CLI printed no mask command on stderr; the check below is then trivially true")
		}
		for _, a := range res.Annotations {
			if strings.Contains(a.Message, "::") {
				t.Errorf("annotation carries a workflow command: %q", a.Message)
			}
		}
		if strings.Contains(res.Summary, "::add-mask::") {
			t.Errorf("summary carries a mask command:\n%s", res.Summary)
		}
		if !strings.Contains(res.Summary, "attest failed") {
			t.Errorf("summary %q", res.Summary)
		}
	})

	t.Run("deny", func(t *testing.T) {
		orepo, odigest, _ := strings.Cut(other, "@")
		deny := run(t, filepath.Join(root, "actions", "verify"), opts(map[string]string{
			"image": orepo, "digest": odigest, "policy": policyFile}))
		if deny.ExitCode != 1 || deny.StepOutputs["verify"]["decision"] != "deny" {
			t.Fatalf("verify of an unattested image: exit %d, outputs %v", deny.ExitCode, deny.StepOutputs["verify"])
		}
		a, ok := annotation(deny, "error", "trustfabric gate: denied")
		if !ok || a.Message == "" || strings.HasPrefix(a.Message, "deny: ") {
			t.Errorf("deny annotations %+v, want the reasons without the deny: prefix", deny.Annotations)
		}
		if !strings.Contains(deny.Summary, "denied") {
			t.Errorf("summary %q", deny.Summary)
		}
		// With fail-on-deny false the step succeeds and reports the decision.
		soft := run(t, filepath.Join(root, "actions", "verify"), opts(map[string]string{
			"image": orepo, "digest": odigest, "policy": policyFile, "fail-on-deny": "false"}))
		if soft.ExitCode != 0 || soft.Outputs["decision"] != "deny" {
			t.Errorf("fail-on-deny false: exit %d, outputs %v", soft.ExitCode, soft.Outputs)
		}
		if _, ok := annotation(soft, "warning", "trustfabric gate: denied"); !ok {
			t.Errorf("fail-on-deny false: annotations %+v, want warnings", soft.Annotations)
		}

		// The attested image, against a policy that allows another workload.
		b, err := os.ReadFile(policyFile)
		if err != nil {
			t.Fatal(err)
		}
		strict := regexp.MustCompile(`(?m)^  - prefix: .*$`).ReplaceAll(b, []byte("  - exact: spiffe://"+servertest.DefaultTrustDomain+"/github/acme/other/x"))
		strictFile := filepath.Join(policyDir, "strict.yaml")
		if err := os.WriteFile(strictFile, strict, 0o644); err != nil {
			t.Fatal(err)
		}
		wrong := run(t, filepath.Join(root, "actions", "verify"), opts(map[string]string{
			"image": repo, "digest": digest, "policy": strictFile}))
		if wrong.ExitCode != 1 || wrong.StepOutputs["verify"]["decision"] != "deny" {
			t.Fatalf("verify against a policy for another workload: exit %d, outputs %v", wrong.ExitCode, wrong.StepOutputs["verify"])
		}
		if len(wrong.Annotations) == 0 || !strings.Contains(wrong.Summary, "denied") {
			t.Errorf("annotations %+v, summary %q", wrong.Annotations, wrong.Summary)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
