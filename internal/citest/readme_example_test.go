package citest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var workedExampleRE = regexp.MustCompile("(?s)### A worked example\\n.*?```sh\\n(.*?)```")

// TestReadmeWorkedExample runs README.md's "A worked example" as a new user
// would paste it (with the CLI built once instead of by its first line), so
// the commands, flags and files it names keep working.
func TestReadmeWorkedExample(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := workedExampleRE.FindSubmatch(doc)
	if m == nil {
		t.Fatal("README.md has no \"A worked example\" shell block")
	}
	script := string(m[1])
	const build = "go build -o trustfabric ./cmd/trustfabric\n"
	if !strings.HasPrefix(script, build) {
		t.Fatalf("the worked example no longer starts with %q", build)
	}
	script = strings.TrimPrefix(script, build)
	dir := t.TempDir()
	cli, err := os.ReadFile(builtCLI(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trustfabric"), cli, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "testdata"), filepath.Join(dir, "testdata")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the worked example failed: %v\n%s", err, out)
	}
	for _, want := range []string{"valid: statement by https://ci.example.org/acme/widgets", "type: signed-statement", "ok   receipt.signature", "\nvalid\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
