package citest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
	cliDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// builtCLI builds ./cmd/trustfabric once for the package's tests.
func builtCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		cliDir, cliErr = os.MkdirTemp("", "trustfabric-cli-")
		if cliErr != nil {
			return
		}
		cliPath = filepath.Join(cliDir, "trustfabric")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/trustfabric")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// hasCommands reports whether the CLI has every named subcommand. Cobra
// answers `trustfabric unknown --help` with the root help and exit 0, so look
// for the subcommand's own usage line.
func hasCommands(t *testing.T, cli string, names ...string) bool {
	t.Helper()
	for _, n := range names {
		out, err := exec.Command(cli, n, "--help").Output()
		if err != nil || !strings.Contains(string(out), "trustfabric "+n) {
			return false
		}
	}
	return true
}

func run(t *testing.T, dir string, opts RunOptions) *RunResult {
	t.Helper()
	// A guard against a hung step, not a speed check: a step that builds the
	// CLI from source on a cold build cache and a loaded two-core machine
	// takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if opts.Workspace == "" {
		opts.Workspace = t.TempDir()
	}
	res, err := RunComposite(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	return res
}

func annotation(res *RunResult, level, title string) (Annotation, bool) {
	for _, a := range res.Annotations {
		if a.Level == level && a.Title == title {
			return a, true
		}
	}
	return Annotation{}, false
}

func TestSetupBuildsFromSource(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	root := repoRoot(t)
	temp := t.TempDir()
	res := run(t, filepath.Join(root, "actions", "setup"), RunOptions{RunnerTemp: temp})
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if res.Outputs["source"] != "source" || res.Outputs["version"] != "source" {
		t.Errorf("outputs %v, want a source build", res.Outputs)
	}
	path := res.Outputs["path"]
	if out, err := exec.Command(path, "--version").CombinedOutput(); err != nil {
		t.Fatalf("%s --version: %v\n%s", path, err, out)
	}
	if !slices.Equal(res.Path, []string{filepath.Dir(path)}) {
		t.Errorf("GITHUB_PATH = %v, want [%s]", res.Path, filepath.Dir(path))
	}
	// Later steps find it as plain `trustfabric`.
	if filepath.Base(path) != "trustfabric" {
		t.Errorf("binary is %s, want it named trustfabric so that PATH lookups find it", path)
	}
	// A second action in the same job reuses the build.
	before, _ := os.Stat(path)
	res2 := run(t, filepath.Join(root, "actions", "verify"), RunOptions{RunnerTemp: temp,
		Inputs: map[string]string{"image": "registry.example.org/a", "policy": "missing.yaml"}})
	after, _ := os.Stat(path)
	if res2.StepOutputs["install"]["path"] != path || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("the second action rebuilt the CLI")
	}
}

func TestSetupCLIPath(t *testing.T) {
	cli := builtCLI(t)
	root := repoRoot(t)
	res := run(t, filepath.Join(root, "actions", "setup"), RunOptions{Inputs: map[string]string{"cli-path": cli}})
	if res.ExitCode != 0 || res.Outputs["path"] != cli || res.Outputs["source"] != "path" {
		t.Fatalf("exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	res = run(t, filepath.Join(root, "actions", "setup"), RunOptions{Inputs: map[string]string{"cli-path": "/nonexistent/trustfabric"}})
	if res.ExitCode == 0 {
		t.Fatal("a missing cli-path was accepted")
	}
	if _, ok := annotation(res, "error", "trustfabric setup"); !ok {
		t.Errorf("no error annotation: %+v", res.Annotations)
	}
}

// releaseRepo copies the actions into a scratch repository whose checksums.txt
// lists one release binary, and serves that release over TLS.
func releaseRepo(t *testing.T, listed, served []byte) (dir string, env map[string]string) {
	t.Helper()
	root := repoRoot(t)
	dir = t.TempDir()
	copyTree(t, filepath.Join(root, "actions"), filepath.Join(dir, "actions"))
	copyFile(t, filepath.Join(root, "action.yml"), filepath.Join(dir, "action.yml"))
	asset := fmt.Sprintf("trustfabric_v1.2.3_%s_%s", runtime.GOOS, runtime.GOARCH)
	sum := sha256.Sum256(listed)
	line := hex.EncodeToString(sum[:]) + "  " + asset + "\n"
	f, err := os.OpenFile(filepath.Join(dir, "actions", "lib", "checksums.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
	f.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served == nil || r.URL.Path != "/acme/tf/releases/download/v1.2.3/"+asset {
			http.NotFound(w, r)
			return
		}
		w.Write(served)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, map[string]string{"GITHUB_SERVER_URL": srv.URL, "CURL_CA_BUNDLE": ca}
}

func TestSetupRelease(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	bin, err := os.ReadFile(builtCLI(t))
	if err != nil {
		t.Fatal(err)
	}
	gh := map[string]string{"action_ref": "v1.2.3", "action_repository": "acme/tf"}

	t.Run("verified", func(t *testing.T) {
		dir, env := releaseRepo(t, bin, bin)
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh})
		if res.ExitCode != 0 || res.Outputs["source"] != "release" || res.Outputs["version"] != "v1.2.3" {
			t.Fatalf("exit %d, outputs %v", res.ExitCode, res.Outputs)
		}
		if filepath.Base(res.Outputs["path"]) != "trustfabric" {
			t.Errorf("binary is %s, want it named trustfabric", res.Outputs["path"])
		}
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		tampered := append(slices.Clone(bin), 0)
		dir, env := releaseRepo(t, bin, tampered)
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh})
		if res.ExitCode == 0 {
			t.Fatal("a binary whose checksum does not match was accepted")
		}
		if a, ok := annotation(res, "error", "trustfabric setup"); !ok || !strings.Contains(a.Message, "checksum") {
			t.Errorf("annotations %+v, want a checksum error", res.Annotations)
		}
		if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "runner-temp-*", "trustfabric", "bin", "v1.2.3", "*")); len(left) > 0 {
			t.Errorf("left files behind: %v", left)
		}
	})
	t.Run("missing asset", func(t *testing.T) {
		dir, env := releaseRepo(t, bin, nil)
		temp := t.TempDir()
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh, RunnerTemp: temp})
		if res.ExitCode == 0 {
			t.Fatal("a release whose asset is missing was installed")
		}
		if a, ok := annotation(res, "error", "trustfabric setup"); !ok || !strings.Contains(a.Message, "could not download") {
			t.Errorf("annotations %+v, want a download error", res.Annotations)
		}
		if left, _ := filepath.Glob(filepath.Join(temp, "trustfabric", "bin", "v1.2.3", "*")); len(left) > 0 {
			t.Errorf("left files behind: %v", left)
		}
	})
	t.Run("unknown os/arch", func(t *testing.T) {
		dir, env := releaseRepo(t, bin, bin)
		fake := t.TempDir()
		uname := "#!/bin/sh\ncase \"$1\" in -s) echo Linux ;; -m) echo riscv64 ;; *) echo Linux ;; esac\n"
		if err := os.WriteFile(filepath.Join(fake, "uname"), []byte(uname), 0o755); err != nil {
			t.Fatal(err)
		}
		env["PATH"] = fake + string(os.PathListSeparator) + os.Getenv("PATH")
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh,
			Inputs: map[string]string{"cli-version": "v1.2.3"}})
		if res.ExitCode == 0 {
			t.Fatal("a release was installed for an OS/arch it is not built for")
		}
		if a, ok := annotation(res, "error", "trustfabric setup"); !ok || !strings.Contains(a.Message, "no release binary for linux/riscv64") {
			t.Errorf("annotations %+v, want an error naming linux/riscv64", res.Annotations)
		}
	})
	t.Run("unlisted version", func(t *testing.T) {
		dir, env := releaseRepo(t, bin, bin)
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh,
			Inputs: map[string]string{"cli-version": "v9.9.9"}})
		if res.ExitCode == 0 {
			t.Fatal("a version with no committed checksum was installed")
		}
	})
}

// TestNoIdentity covers jobs that cannot mint an OIDC token (fork pull
// requests, or no id-token permission): a clear error, or a notice and
// skipped=true with on-missing-identity: skip; never a stack trace.
func TestNoIdentity(t *testing.T) {
	cli := builtCLI(t)
	root := repoRoot(t)
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"}
	cases := []struct {
		dir    string
		inputs map[string]string
	}{
		{root, map[string]string{"image": "ghcr.io/acme/app", "digest": "sha256:" + strings.Repeat("ab", 32),
			"ts-url": "https://ts.example.org", "identity-server": "https://id.example.org", "cli-path": cli}},
		{filepath.Join(root, "actions", "identity"), map[string]string{"identity-server": "https://id.example.org", "cli-path": cli}},
	}
	for _, c := range cases {
		name := filepath.Base(c.dir)
		t.Run(name+"/fail", func(t *testing.T) {
			res := run(t, c.dir, RunOptions{Env: env, Inputs: c.inputs})
			if res.ExitCode != 1 {
				t.Fatalf("exit %d, want 1", res.ExitCode)
			}
			a, ok := annotation(res, "error", "trustfabric: no identity")
			if !ok || !strings.Contains(a.Message, "fork") {
				t.Errorf("annotations %+v, want the fork explanation", res.Annotations)
			}
			if !strings.Contains(res.Summary, "no identity") {
				t.Errorf("summary %q", res.Summary)
			}
			if strings.Contains(res.Stderr, "goroutine") || strings.Contains(res.Stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", res.Stderr)
			}
		})
		t.Run(name+"/skip", func(t *testing.T) {
			inputs := map[string]string{"on-missing-identity": "skip"}
			for k, v := range c.inputs {
				inputs[k] = v
			}
			res := run(t, c.dir, RunOptions{Env: env, Inputs: inputs})
			if res.ExitCode != 0 || res.Outputs["skipped"] != "true" {
				t.Fatalf("exit %d, outputs %v", res.ExitCode, res.Outputs)
			}
			if _, ok := annotation(res, "notice", "trustfabric: skipped"); !ok {
				t.Errorf("annotations %+v, want a notice", res.Annotations)
			}
		})
	}
}

func TestVerifyBadInput(t *testing.T) {
	cli := builtCLI(t)
	dir := filepath.Join(repoRoot(t), "actions", "verify")
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, inputs := range map[string]map[string]string{
		"missing policy": {"image": "ghcr.io/acme/app", "policy": "nope.yaml"},
		"bad digest":     {"image": "ghcr.io/acme/app", "digest": "latest", "policy": policy},
		"bad offline":    {"image": "ghcr.io/acme/app", "policy": policy, "offline": "yes"},
		"empty image":    {"image": "", "policy": policy},
	} {
		t.Run(name, func(t *testing.T) {
			inputs["cli-path"] = cli
			res := run(t, dir, RunOptions{Inputs: inputs})
			if res.ExitCode != 2 {
				t.Errorf("exit %d, want 2 (usage)", res.ExitCode)
			}
			if len(res.Annotations) == 0 || res.Annotations[0].Level != "error" {
				t.Errorf("annotations %+v, want an error", res.Annotations)
			}
		})
	}
}

// TestRegistryPasswordMasked checks that the registry password and the auth
// string derived from it are masked before anything could print them, and
// that the credentials are written for the CLI only, mode 0600.
func TestRegistryPasswordMasked(t *testing.T) {
	cli := builtCLI(t)
	g, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	temp := t.TempDir()
	const secret = "ghp_s3cretTokenValue"
	res := run(t, repoRoot(t), RunOptions{
		RunnerTemp: temp,
		Env: map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
			"ACTIONS_ID_TOKEN_REQUEST_URL": g.RequestURL(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": g.RequestToken},
		Inputs: map[string]string{"image": "ghcr.io/acme/app", "digest": "sha256:" + strings.Repeat("cd", 32),
			"ts-url": "http://127.0.0.1:1", "identity-server": "http://127.0.0.1:1",
			"registry-username": "octocat", "registry-password": secret, "cli-path": cli},
	})
	if !slices.Contains(res.Masks, secret) {
		t.Errorf("password not masked; masks %v", res.Masks)
	}
	for _, out := range []string{strings.ReplaceAll(res.Stdout, "::add-mask::"+secret, ""), res.Stderr, res.Summary} {
		if strings.Contains(out, secret) {
			t.Errorf("password printed:\n%s", out)
		}
	}
	cfg := filepath.Join(temp, "trustfabric", "docker", "config.json")
	info, err := os.Stat(cfg)
	if err != nil {
		t.Fatalf("docker config not written: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("docker config mode %v, want 0600", info.Mode().Perm())
	}
	// Nothing listens at the service URLs: the CLI fails with a usage/input
	// error (exit 2), reported as an error annotation, not a stack trace.
	if res.ExitCode != 2 {
		t.Errorf("attest against unreachable services exits %d, want 2", res.ExitCode)
	}
	if len(res.Annotations) == 0 || res.Annotations[0].Level != "error" {
		t.Errorf("annotations %+v, want an error", res.Annotations)
	}
}
