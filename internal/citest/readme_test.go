package citest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var snippetRE = regexp.MustCompile("(?s)<!-- snippet: ([^ ]+) -->\\s*```[a-z]*\\n(.*?)```")

// TestReadmeSnippets keeps every snippet of README.md's CI sections
// identical to a piece of the example it names, so users copy what the tests
// check.
func TestReadmeSnippets(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	checkSnippets(t, root, doc)
}

func checkSnippets(t *testing.T, root string, doc []byte) {
	t.Helper()
	matches := snippetRE.FindAllStringSubmatch(string(doc), -1)
	if len(matches) < 6 {
		t.Fatalf("found %d snippets, want at least two per platform", len(matches))
	}
	seen := map[string]bool{}
	for _, m := range matches {
		file, snippet := m[1], m[2]
		seen[filepath.Dir(file)] = true
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Errorf("snippet names %s: %v", file, err)
			continue
		}
		if !strings.Contains(string(b), snippet) {
			t.Errorf("snippet from %s is not in that file:\n%s", file, snippet)
		}
	}
	for _, platform := range []string{"examples/github", "examples/gitlab", "examples/tekton"} {
		if !seen[platform] {
			t.Errorf("no snippet from %s", platform)
		}
	}
}
