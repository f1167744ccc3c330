package citest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestVerifyComponentInShellImage runs the verify component's job script as
// GitLab would in its default image: with the busybox sh and the trustfabric
// CLI of Trustfabric's shell image (its file system extracted by
// `devtools/image --extract … --rootfs DIR`) and nothing else on PATH. .ci/image.sh
// builds the image, extracts it, attests TF_SHELL_IMAGE_ALLOW and runs this
// test; it fails there if the test skips.
//
//	TF_SHELL_IMAGE_ROOT   the extracted file system
//	TF_SHELL_IMAGE_ALLOW  an image (REPO@DIGEST) the policy allows
//	TF_SHELL_IMAGE_DENY   an image (REPO@DIGEST) it denies (no statement)
//	TF_SHELL_IMAGE_POLICY the verification policy
func TestVerifyComponentInShellImage(t *testing.T) {
	root := os.Getenv("TF_SHELL_IMAGE_ROOT")
	if root == "" {
		t.Skip("TF_SHELL_IMAGE_ROOT not set: .ci/image.sh builds the shell image and runs this test")
	}
	path := filepath.Join(repoRoot(t), "gitlab", "templates", "verify.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		image    string
		exit     int
		decision string
	}{
		{os.Getenv("TF_SHELL_IMAGE_ALLOW"), 0, "allow"},
		{os.Getenv("TF_SHELL_IMAGE_DENY"), 1, "deny"},
	} {
		repo, digest, ok := strings.Cut(tc.image, "@")
		if !ok {
			t.Fatalf("image %q has no digest", tc.image)
		}
		docs, err := splitYAML(b) // afresh: interpolate rewrites the nodes
		if err != nil || len(docs) != 2 {
			t.Fatalf("split: %v", err)
		}
		inputs, err := specInputs(docs[0])
		if err != nil {
			t.Fatal(err)
		}
		values := map[string]any{}
		for name, in := range inputs {
			values[name] = in.Default
		}
		values["image"], values["digest"], values["policy"] = repo, digest, os.Getenv("TF_SHELL_IMAGE_POLICY")
		body := docs[1]
		interpolate(body, values, map[string]bool{}, func(string) {})
		var jobs map[string]struct {
			Variables map[string]string `yaml:"variables"`
			Script    []string          `yaml:"script"`
		}
		if err := body.Decode(&jobs); err != nil {
			t.Fatal(err)
		}
		job := jobs["trustfabric-verify"]
		dir := t.TempDir()
		env := []string{"PATH=" + filepath.Join(root, "usr/local/bin") + ":" + filepath.Join(root, "bin"), "HOME=" + dir,
			"CI_PROJECT_DIR=" + dir, "SSL_CERT_FILE=" + filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")}
		for k, v := range job.Variables {
			env = append(env, k+"="+v)
		}
		cmd := exec.Command(filepath.Join(root, "bin", "sh"), "-c", strings.Join(job.Script, "\n"))
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		code := 0
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "trustfabric", "verify.env"))
		if code != tc.exit || strings.TrimSpace(string(got)) != "TRUSTFABRIC_DECISION="+tc.decision {
			t.Errorf("%s: exit %d, dotenv %q; want exit %d and %s\n%s", tc.image, code, got, tc.exit, tc.decision, out)
		}
	}
}

// TestTektonVerifyWithImageCLI runs the verify Task's step and the verify
// StepAction as Tekton would in exec form: their command and args, with the
// params, workspace and result paths substituted, run by the CLI read from
// Trustfabric's image (`devtools/image --extract`). The image has no shell,
// so these args are the whole step. .ci/image.sh sets the variables of
// TestVerifyComponentInShellImage and TF_IMAGE_CLI, and fails if this skips.
func TestTektonVerifyWithImageCLI(t *testing.T) {
	cli := os.Getenv("TF_IMAGE_CLI")
	if cli == "" {
		t.Skip("TF_IMAGE_CLI not set: .ci/image.sh extracts the image's CLI and runs this test")
	}
	policy := os.Getenv("TF_SHELL_IMAGE_POLICY")
	for _, file := range []string{"task/trustfabric-verify/trustfabric-verify.yaml", "stepaction/trustfabric-verify/trustfabric-verify.yaml"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "tekton", file))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Spec struct {
				Params []struct {
					Name    string `yaml:"name"`
					Default string `yaml:"default"`
				} `yaml:"params"`
				Steps []struct {
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
				} `yaml:"steps"`
				Command []string `yaml:"command"`
				Args    []string `yaml:"args"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		command, args := m.Spec.Command, m.Spec.Args
		if len(m.Spec.Steps) == 1 {
			command, args = m.Spec.Steps[0].Command, m.Spec.Steps[0].Args
		}
		if len(command) != 1 || command[0] != "/usr/local/bin/trustfabric" {
			t.Fatalf("%s: command %q", file, command)
		}
		for _, tc := range []struct {
			image, failOnDeny string
			exit              int
			decision          string
		}{
			{os.Getenv("TF_SHELL_IMAGE_ALLOW"), "true", 0, "allow"},
			{os.Getenv("TF_SHELL_IMAGE_DENY"), "true", 1, "deny"},
			{os.Getenv("TF_SHELL_IMAGE_DENY"), "false", 0, "deny"},
		} {
			repo, digest, _ := strings.Cut(tc.image, "@")
			dir := t.TempDir()
			params := map[string]string{}
			for _, p := range m.Spec.Params {
				params[p.Name] = p.Default
			}
			params["IMAGE_URL"], params["IMAGE_DIGEST"], params["fail-on-deny"] = repo, digest, tc.failOnDeny
			params["policy"] = filepath.Base(policy)
			if strings.HasPrefix(file, "stepaction/") {
				params["policy"] = policy
			}
			subst := strings.NewReplacer("$(workspaces.policy.path)", filepath.Dir(policy),
				"$(results.DECISION.path)", filepath.Join(dir, "DECISION"), "$(step.results.DECISION.path)", filepath.Join(dir, "DECISION"))
			var argv []string
			for _, a := range args {
				a = subst.Replace(a)
				for k, v := range params {
					a = strings.ReplaceAll(a, "$(params."+k+")", v)
				}
				if strings.Contains(a, "$(") {
					t.Fatalf("%s: arg %q has an unsubstituted variable", file, a)
				}
				argv = append(argv, a)
			}
			cmd := exec.Command(cli, argv...)
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG=")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "DECISION"))
			if code != tc.exit || string(got) != tc.decision {
				t.Errorf("%s on %s (fail-on-deny %s): exit %d, DECISION %q; want %d, %q\n%s", file, tc.image, tc.failOnDeny, code, got, tc.exit, tc.decision, out)
			}
		}
	}
}

// TestTektonAttestWithImageCLI runs the attest Task's step in exec form with
// the image's CLI, as TestTektonVerifyWithImageCLI does for the gate, and
// checks the result files the CLI writes. Two things differ from a cluster:
// the provider param is github (.ci/image.sh's services are a GitHub Actions
// fake; the kubernetes and spiffe sources have their own tests), and
// Tekton's /tekton/results is a scratch directory.
//
//	TF_IMAGE_CLI, TF_SHELL_IMAGE_ALLOW (the image to attest),
//	TF_SELFTEST_TS, TF_SELFTEST_IDS and the GitHub runner variables
func TestTektonAttestWithImageCLI(t *testing.T) {
	cli := os.Getenv("TF_IMAGE_CLI")
	if cli == "" {
		t.Skip("TF_IMAGE_CLI not set: .ci/image.sh extracts the image's CLI and runs this test")
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "tekton", "task", "trustfabric-attest", "trustfabric-attest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Spec struct {
			Params []struct {
				Name    string `yaml:"name"`
				Default string `yaml:"default"`
			} `yaml:"params"`
			Steps []struct {
				Command    []string `yaml:"command"`
				Args       []string `yaml:"args"`
				WorkingDir string   `yaml:"workingDir"`
				Env        []struct {
					Name  string `yaml:"name"`
					Value string `yaml:"value"`
				} `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Spec.Steps) != 1 {
		t.Fatalf("%d steps", len(m.Spec.Steps))
	}
	step := m.Spec.Steps[0]
	repo, digest, _ := strings.Cut(os.Getenv("TF_SHELL_IMAGE_ALLOW"), "@")
	params := map[string]string{}
	for _, p := range m.Spec.Params {
		params[p.Name] = p.Default
	}
	params["IMAGE_URL"], params["IMAGE_DIGEST"] = repo, digest
	params["ts-url"], params["identity-server"], params["provider"] = os.Getenv("TF_SELFTEST_TS"), os.Getenv("TF_SELFTEST_IDS"), "github"
	results := t.TempDir()
	// Optional workspaces that are not bound expand to "".
	subst := func(s string) string {
		for k, v := range params {
			s = strings.ReplaceAll(s, "$(params."+k+")", v)
		}
		for _, w := range []string{"source", "dockerconfig", "spiffe-workload-api"} {
			s = strings.ReplaceAll(s, "$(workspaces."+w+".path)", "")
		}
		s = strings.ReplaceAll(s, "/tekton/results", results)
		if strings.Contains(s, "$(") {
			t.Fatalf("%q has an unsubstituted variable", s)
		}
		return s
	}
	var argv []string
	for _, a := range step.Args {
		argv = append(argv, subst(a))
	}
	cmd := exec.Command(cli, argv...)
	cmd.Dir = t.TempDir()
	if wd := subst(step.WorkingDir); wd != "" {
		t.Fatalf("workingDir %q with no source workspace", wd)
	}
	cmd.Env = os.Environ()
	for _, e := range step.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+subst(e.Value))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("attest step: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(results, name))
		if err != nil {
			t.Errorf("result %s: %v", name, err)
		}
		return string(b)
	}
	entry, ref, uri := read("ENTRY_ID"), read("REFERRER_DIGEST"), read("REFERRER_URI")
	if len(entry) != 64 || !strings.HasPrefix(ref, "sha256:") || uri != repo+"@"+ref || read("LOG_INDEX") == "" {
		t.Errorf("results ENTRY_ID %q, REFERRER_DIGEST %q, REFERRER_URI %q\n%s", entry, ref, uri, out)
	}
}
