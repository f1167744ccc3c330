package citest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
