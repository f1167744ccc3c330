package policy

import (
	"os"
	"regexp"
	"testing"
)

// TestReadmePolicy keeps README.md's complete policy example valid.
func TestReadmePolicy(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)A complete policy \\(every field.*?```yaml\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("README.md has no complete policy example")
	}
	p, err := Parse(m[1], t.TempDir())
	if err != nil {
		t.Fatalf("README's policy does not parse: %v", err)
	}
	if len(p.Workloads) == 0 || len(p.Provenance.Refs) == 0 {
		t.Errorf("README's policy lost its rules: %+v", p)
	}
}
