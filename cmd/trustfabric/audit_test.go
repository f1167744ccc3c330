package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditCommand: exit codes per --fail-on, the three formats, and usage
// errors, on the library's corpus.
func TestAuditCommand(t *testing.T) {
	corpus := filepath.Join("..", "..", "pkg", "audit", "testdata", "corpus")
	clean := t.TempDir()
	wf := filepath.Join(clean, ".github", "workflows", "ok.yml")
	if err := os.MkdirAll(filepath.Dir(wf), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := "name: ok\non: push\npermissions:\n  contents: read\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: make\n"
	if err := os.WriteFile(wf, []byte(ok), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"audit", corpus}, exitInvalid},
		{[]string{"audit", corpus, "--fail-on", "none"}, exitOK},
		{[]string{"audit", corpus, "--fail-on", "error", "--format", "json"}, exitInvalid},
		{[]string{"audit", clean}, exitOK},                           // one note (actions/checkout@v4) is under warning
		{[]string{"audit", clean, "--fail-on", "note"}, exitInvalid}, // and at note
		{[]string{"audit", corpus, "--format", "xml"}, exitUsage},
		{[]string{"audit", corpus, "--fail-on", "critical"}, exitUsage},
		{[]string{"audit", filepath.Join(clean, "missing")}, exitUsage},
		{[]string{"audit", clean, "--allow-ref-pin", "a/b/c"}, exitUsage},
	} {
		code, out, errOut := tf(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tc.args, code, tc.code, out, errOut)
		}
	}
	_, out, _ := tf(t, "audit", corpus, "--format", "sarif", "--fail-on", "none")
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) == 0 {
		t.Errorf("sarif output: %v, %+v", err, sarif)
	}
	_, out, _ = tf(t, "audit", corpus, "--fail-on", "none")
	if !strings.Contains(out, "[registry-password]") || !strings.Contains(out, "fix: ") {
		t.Errorf("text output lacks a finding with its fix:\n%s", out)
	}
}
