package citest

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// newLinter returns actionlint with shellcheck when it is installed (.ci/ci.sh
// installs it); without it, actionlint still runs every other rule.
func newLinter(t *testing.T) *actionlint.Linter {
	t.Helper()
	opts := &actionlint.LinterOptions{LogWriter: io.Discard}
	if p, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = p
	} else {
		t.Log("shellcheck not on PATH: actionlint runs without its shellcheck rule")
	}
	l, err := actionlint.NewLinter(io.Discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func reportLint(t *testing.T, errs []*actionlint.Error) {
	t.Helper()
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

func TestWorkflowLint(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows in .github/workflows (err %v)", err)
	}
	proj, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := newLinter(t).LintFiles(files, proj)
	if err != nil {
		t.Fatal(err)
	}
	reportLint(t, errs)
	// The workflows must exercise every action by its local path, so that
	// actionlint checks the inputs and outputs of each against its metadata
	// (selftest.yml, run under act, all but actions/audit, whose SARIF
	// upload is a remote action act cannot fetch offline: audit.yml uses it).
	var self []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		self = append(self, b...)
	}
	for _, dir := range actionDirs(t) {
		rel, _ := filepath.Rel(root, dir)
		ref := "./" + filepath.ToSlash(rel)
		if rel == "." {
			ref = "./"
		}
		if !regexp.MustCompile(`(?m)uses: ` + regexp.QuoteMeta(ref) + `\s*$`).Match(self) {
			t.Errorf("no workflow in .github/workflows uses %s", ref)
		}
	}
}

// TestSelftestWorkflowLint lints the workflows .ci/ci.sh runs only under act
// (.github/selftest/*.yml, not run on GitHub: the isolated workflow's caller).
func TestSelftestWorkflowLint(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, ".github", "selftest", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows in .github/selftest (err %v)", err)
	}
	proj, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := newLinter(t).LintFiles(files, proj)
	if err != nil {
		t.Fatal(err)
	}
	reportLint(t, errs)
}

// remoteRef matches how the examples and the README reference our actions.
var remoteRef = regexp.MustCompile(`uses: trustfabric/trustfabric(/actions/[a-z-]+)?@[A-Za-z0-9._-]+`)

// localize rewrites references to this repository's actions into local paths.
func localize(b []byte) []byte {
	return remoteRef.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := remoteRef.FindSubmatch(m)[1]
		if len(sub) == 0 {
			return []byte("uses: ./")
		}
		return []byte("uses: ." + string(sub))
	})
}

func TestExampleWorkflowLint(t *testing.T) {
	root := repoRoot(t)
	examples, err := filepath.Glob(filepath.Join(root, "examples", "github", "*.yml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples in examples/github (err %v)", err)
	}
	// A scratch repository holding our actions and the rewritten examples.
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "actions"), filepath.Join(tmp, "actions"))
	copyFile(t, filepath.Join(root, "action.yml"), filepath.Join(tmp, "action.yml"))
	wf := filepath.Join(tmp, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, ex := range examples {
		b, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		if !remoteRef.Match(b) {
			t.Errorf("%s does not use trustfabric/trustfabric actions", ex)
		}
		local := localize(b)
		if strings.Contains(string(local), "trustfabric/trustfabric/") {
			t.Errorf("%s: a reference was not rewritten", ex)
		}
		dst := filepath.Join(wf, filepath.Base(ex))
		if err := os.WriteFile(dst, local, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, dst)
	}
	proj, err := actionlint.NewProject(tmp)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := newLinter(t).LintFiles(files, proj)
	if err != nil {
		t.Fatal(err)
	}
	reportLint(t, errs)
}

// TestLintCatchesMisuse shows that the lint above is not vacuous: a workflow
// that passes an undeclared input to a local action, or reads an output the
// action does not have, is reported.
func TestLintCatchesMisuse(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	copyTree(t, filepath.Join(root, "actions"), filepath.Join(tmp, "actions"))
	copyFile(t, filepath.Join(root, "action.yml"), filepath.Join(tmp, "action.yml"))
	bad := []byte(`name: bad
on: push
permissions:
  id-token: write
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - id: a
        uses: ./
        with:
          imagee: ghcr.io/acme/app
          ts-url: http://127.0.0.1:1
          identity-server: http://127.0.0.1:1
      - run: echo "$X"
        env:
          X: ${{ steps.a.outputs.entry_idd }}
`)
	p := filepath.Join(tmp, ".github", "workflows", "bad.yml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	proj, err := actionlint.NewProject(tmp)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := newLinter(t).LintFiles([]string{p}, proj)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range errs {
		kinds = append(kinds, e.Kind+": "+e.Message)
	}
	joined := strings.Join(kinds, "\n")
	for _, want := range []string{"imagee", "entry_idd"} {
		if !strings.Contains(joined, want) {
			t.Errorf("actionlint did not report %q; it reported:\n%s", want, joined)
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
