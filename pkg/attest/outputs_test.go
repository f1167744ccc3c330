package attest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trustfabric/trustfabric/pkg/attest"
)

func sampleResult(dir string) *attest.Result {
	return &attest.Result{
		Image: "registry.example/acme/widgets:v1", Subject: "oci://registry.example/acme/widgets@sha256:4f53",
		EntryID: strings.Repeat("ab", 32), LogIndex: 41, TreeSize: 42, TSURL: "https://ts.example",
		Referrer: "registry.example/acme/widgets@sha256:9c1d", ReferrerDigest: "sha256:9c1d",
		StatementPath: filepath.Join(dir, "s.cose"),
		Steps:         []attest.Step{{Name: attest.StepIdentity}, {Name: attest.StepAttach}},
	}
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestWriteOutputsGitLab(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	res := sampleResult(dir)
	written, err := attest.WriteOutputs(res, nil, attest.OutputOptions{Getenv: envOf(map[string]string{"GITLAB_CI": "true"})})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{attest.DefaultDotenvFile}, written); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	want := "TRUSTFABRIC_ENTRY_ID=" + res.EntryID + "\nTRUSTFABRIC_LOG_INDEX=41\nTRUSTFABRIC_TREE_SIZE=42\n" +
		"TRUSTFABRIC_REFERRER_DIGEST=sha256:9c1d\nTRUSTFABRIC_STATEMENT_PATH=" + res.StatementPath + "\n"
	if diff := cmp.Diff(want, readFile(t, attest.DefaultDotenvFile)); diff != "" {
		t.Errorf("dotenv (-want +got):\n%s", diff)
	}
	// Outside GitLab, nothing is written unless a file is named.
	os.Remove(attest.DefaultDotenvFile)
	if w, err := attest.WriteOutputs(res, nil, attest.OutputOptions{Getenv: envOf(nil)}); err != nil || len(w) != 0 {
		t.Errorf("outside CI wrote %v (%v)", w, err)
	}
	// A value spanning lines cannot be represented: an error, not a broken report.
	res.StatementPath = "a\nTRUSTFABRIC_ENTRY_ID=forged"
	if _, err := attest.WriteOutputs(res, nil, attest.OutputOptions{DotenvFile: "x.env", Getenv: envOf(nil)}); !errors.Is(err, attest.ErrOutput) {
		t.Errorf("multi-line value: err = %v, want ErrOutput", err)
	}
}

func TestWriteOutputsTekton(t *testing.T) {
	dir := t.TempDir()
	res := sampleResult(dir)
	_, err := attest.WriteOutputs(res, nil, attest.OutputOptions{Getenv: envOf(map[string]string{attest.EnvTektonResultsDir: dir})})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"ENTRY_ID": res.EntryID, "LOG_INDEX": "41", "REFERRER_DIGEST": "sha256:9c1d", "REFERRER_URI": res.Referrer} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("result %s = %q, want %q", name, got, want)
		}
	}
}

func TestWriteOutputsGitHub(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "out"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "sum")}
	res := sampleResult(dir)
	if _, err := attest.WriteOutputs(res, nil, attest.OutputOptions{Getenv: envOf(vars)}); err != nil {
		t.Fatal(err)
	}
	out := readFile(t, vars["GITHUB_OUTPUT"])
	for k, v := range map[string]string{"entry-id": res.EntryID, "log-index": "41", "tree-size": "42", "referrer-digest": "sha256:9c1d", "statement-path": res.StatementPath} {
		if got := githubOutput(out, k); got != v {
			t.Errorf("output %s = %q, want %q", k, got, v)
		}
	}
	// A failed run after registration: no outputs, a summary that says so.
	os.Remove(vars["GITHUB_OUTPUT"])
	os.Remove(vars["GITHUB_STEP_SUMMARY"])
	na := &attest.NotAttachedError{EntryID: res.EntryID, Image: "r/x@sha256:4f53", Err: errors.New("connection refused")}
	res.ReferrerDigest, res.Referrer = "", ""
	if _, err := attest.WriteOutputs(res, na, attest.OutputOptions{Getenv: envOf(vars)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vars["GITHUB_OUTPUT"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run set outputs (%v)", err)
	}
	sum := readFile(t, vars["GITHUB_STEP_SUMMARY"])
	if !strings.Contains(sum, "registered but not attached") || !strings.Contains(sum, res.EntryID) {
		t.Errorf("summary:\n%s", sum)
	}
	// An unwritable output file is an error, never a panic.
	vars["GITHUB_OUTPUT"] = filepath.Join(dir, "missing", "dir", "out")
	if _, err := attest.WriteOutputs(sampleResult(dir), nil, attest.OutputOptions{Getenv: envOf(vars)}); !errors.Is(err, attest.ErrOutput) {
		t.Errorf("unwritable GITHUB_OUTPUT: err = %v, want ErrOutput", err)
	}
}

func TestSummaryEscapesCells(t *testing.T) {
	res := sampleResult(t.TempDir())
	res.WorkloadID = "spiffe://td/a|b`c"
	sum := attest.Summary(res, nil)
	if strings.Contains(sum, "a|b") || strings.Contains(sum, "b`c") {
		t.Errorf("unescaped cell:\n%s", sum)
	}
}
