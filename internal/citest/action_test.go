package citest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// actionDirs lists the root action and every actions/<name> that has metadata.
func actionDirs(t testing.TB) []string {
	t.Helper()
	root := repoRoot(t)
	dirs := []string{root}
	subs, err := filepath.Glob(filepath.Join(root, "actions", "*", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		dirs = append(dirs, filepath.Dir(s))
	}
	if len(dirs) < 4 {
		t.Fatalf("found %d actions, want the root action and actions/{identity,setup,verify}", len(dirs))
	}
	return dirs
}

func TestActionMetadata(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range actionDirs(t) {
		rel, _ := filepath.Rel(root, dir)
		t.Run(rel, func(t *testing.T) {
			for _, err := range CheckAction(dir, dir == root) {
				t.Error(err)
			}
		})
	}
}

func TestActionMetadataRejects(t *testing.T) {
	tests := []struct {
		dir  string
		root bool
		want error
	}{
		{"unknown-key", false, ErrMalformedAction},
		{"expr-in-run", false, ErrExprInRun},
		{"nested-uses", false, ErrNestedLocalUses},
		{"no-shell", false, ErrNoShell},
		{"undocumented-input", false, ErrUndocumented},
		{"unwired-output", false, ErrUnwiredOutput},
		{"output-not-written", false, ErrUnwiredOutput},
		{"undeclared-input", false, ErrUndeclaredInput},
		{"unused-input", false, ErrUnusedInput},
		{"bad-expression", false, ErrBadExpression},
		{"docker", false, ErrUnsupportedRuns},
		{"unused-input", true, ErrMissingField}, // the root action needs branding
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			errs := CheckAction(filepath.Join("testdata", "actions", tt.dir), tt.root)
			for _, err := range errs {
				if errors.Is(err, tt.want) {
					return
				}
			}
			t.Errorf("CheckAction = %v, want an error wrapping %v", errs, tt.want)
		})
	}
}
