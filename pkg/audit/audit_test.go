package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const corpus = "testdata/corpus"

// wants reads the `want: RULE…` markers of the corpus: file:line:rule.
func wants(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(corpus, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAML(path) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			_, after, ok := strings.Cut(sc.Text(), "want:")
			if !ok {
				continue
			}
			for _, rule := range strings.Fields(after) {
				out = append(out, fmt.Sprintf("%s:%d:%s", filepath.ToSlash(path), n, rule))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func scanCorpus(t *testing.T) *Report {
	t.Helper()
	r, err := Scan(context.Background(), []string{corpus})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Errors {
		t.Errorf("file error: %v", e)
	}
	return r
}

// TestCorpus: every marked line is reported with its rule, and nothing else
// is (the unmarked lines are the negative cases).
func TestCorpus(t *testing.T) {
	r := scanCorpus(t)
	var got []string
	for _, f := range r.Findings {
		got = append(got, fmt.Sprintf("%s:%d:%s", f.File, f.Line, f.Rule))
		if f.Fix == "" || f.Message == "" || f.Severity == SeverityNone {
			t.Errorf("%s:%d: finding without fix, message or severity: %+v", f.File, f.Line, f)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(wants(t), got); diff != "" {
		t.Errorf("findings differ from the want: markers (-want +got):\n%s", diff)
	}
	// Each kind of file was recognised.
	kinds := map[Kind]int{}
	for _, f := range r.Files {
		kinds[f.Kind]++
	}
	for _, k := range []Kind{KindGitHubWorkflow, KindGitHubAction, KindGitLab, KindTekton} {
		if kinds[k] == 0 {
			t.Errorf("no file of kind %s in the corpus scan: %v", k, r.Files)
		}
	}
}

// TestEveryRuleHasACase: each rule has a positive case in the corpus.
func TestEveryRuleHasACase(t *testing.T) {
	seen := map[string]bool{}
	for _, w := range wants(t) {
		seen[w[strings.LastIndex(w, ":")+1:]] = true
	}
	for _, r := range Rules() {
		if !seen[r.ID] {
			t.Errorf("rule %s has no want: marker in %s", r.ID, corpus)
		}
	}
	for id := range seen {
		if !slices.ContainsFunc(Rules(), func(r Rule) bool { return r.ID == id }) {
			t.Errorf("want: marker names unknown rule %q", id)
		}
	}
}

func seeded(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpus, "seeded-secrets.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestNoSecretInOutput renders every format and looks for each seeded
// secret (and its halves) in the bytes; it also checks that each seeded
// secret was found, by fingerprint, so the search is not vacuous.
func TestNoSecretInOutput(t *testing.T) {
	r := scanCorpus(t)
	var text, js, sarif bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteSARIF(&sarif, "test"); err != nil {
		t.Fatal(err)
	}
	fps := map[string]bool{}
	for _, f := range r.Findings {
		if f.Fingerprint != "" {
			fps[f.Fingerprint] = true
		}
	}
	for _, s := range seeded(t) {
		if !fps[Fingerprint(s)] {
			t.Errorf("seeded secret with fingerprint %s was not found", Fingerprint(s))
		}
		for name, out := range map[string][]byte{"text": text.Bytes(), "json": js.Bytes(), "sarif": sarif.Bytes()} {
			for _, part := range []string{s, s[:len(s)/2], s[len(s)/2:]} {
				if bytes.Contains(out, []byte(part)) {
					t.Errorf("%s output contains (part of) the seeded secret with fingerprint %s", name, Fingerprint(s))
				}
			}
		}
	}
}

// TestRepositoryAudit audits this repository's own workflows, actions,
// examples and CI integrations: nothing above note.
func TestRepositoryAudit(t *testing.T) {
	root := filepath.Join("..", "..")
	var paths []string
	for _, p := range []string{".github", "action.yml", "actions", "examples", "gitlab", "tekton"} {
		paths = append(paths, filepath.Join(root, p))
	}
	r, err := Scan(context.Background(), paths, WithRefPinAllowed("trustfabric/trustfabric"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Files) < 15 {
		t.Errorf("only %d files audited: %v", len(r.Files), r.Files)
	}
	for _, e := range r.Errors {
		t.Errorf("file error: %v", e)
	}
	for _, f := range r.Findings {
		if f.Severity > SeverityNote {
			t.Errorf("%s:%d: %s [%s] %s", f.File, f.Line, f.Severity, f.Rule, f.Message)
		}
	}
}

func TestAcceptance(t *testing.T) {
	wf := []byte(`name: x
on: push
permissions: write-all # trustfabric-audit: accept permissions-write-all the release bot needs it
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      # trustfabric-audit: accept unpinned-action,script-injection vendor action
      - uses: vendor/action@v1
      - uses: other/action@v1
`)
	fs, _, err := scanBytes(KindGitHubWorkflow, "x.yml", wf, options{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Line     int
		Rule     string
		Severity Severity
		Accepted string
	}
	var got []row
	for _, f := range fs {
		got = append(got, row{f.Line, f.Rule, f.Severity, f.Accepted})
	}
	want := []row{
		{3, RuleWriteAll, SeverityNote, "the release bot needs it"},
		{9, RuleUnpinnedAction, SeverityNote, "vendor action"},
		{10, RuleUnpinnedAction, SeverityWarning, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRefPinAllowed(t *testing.T) {
	wf := []byte("on: push\npermissions: {}\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/tool/sub@v2\n      - uses: actions/cache@v4\n      - uses: acmex/tool@v1\n")
	for _, tc := range []struct {
		owners []string
		want   []Severity
	}{
		{nil, []Severity{SeverityWarning, SeverityNote, SeverityWarning}},
		{[]string{"acme"}, []Severity{SeverityNote, SeverityNote, SeverityWarning}},
		{[]string{"acme/tool"}, []Severity{SeverityNote, SeverityNote, SeverityWarning}},
	} {
		o := options{refPinOwners: []string{"actions", "github"}}
		if err := WithRefPinAllowed(tc.owners...)(&o); err != nil {
			t.Fatal(err)
		}
		fs, _, err := scanBytes(KindGitHubWorkflow, "x.yml", wf, o)
		if err != nil {
			t.Fatal(err)
		}
		var got []Severity
		for _, f := range fs {
			got = append(got, f.Severity)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("owners %v: (-want +got):\n%s", tc.owners, diff)
		}
	}
	if err := WithRefPinAllowed("a/b/c")(&options{}); err == nil {
		t.Error("WithRefPinAllowed(a/b/c) did not fail")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a: b\n"), maxFileSize/4), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, ".gitlab-ci.yml")
	if err := os.WriteFile(bad, []byte("include:\n  - local: ../../etc/passwd.yml\njob:\n  script: [\"echo\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	esc := filepath.Join(dir, "sub", ".gitlab-ci.yml")
	if err := os.MkdirAll(filepath.Dir(esc), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(esc, []byte("include:\n  - local: ../../../outside.yml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Scan(context.Background(), []string{big, bad, esc})
	if err != nil {
		t.Fatal(err)
	}
	var tooLarge, parse int
	for _, e := range r.Errors {
		switch {
		case errors.Is(e, ErrTooLarge):
			tooLarge++
		case errors.Is(e, ErrParse):
			parse++
		}
	}
	if tooLarge != 1 || parse != 2 {
		t.Errorf("errors: %d too large, %d parse, want 1 and 2: %v", tooLarge, parse, r.Errors)
	}
	if _, err := Scan(context.Background(), []string{filepath.Join(dir, "missing")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: err = %v, want fs.ErrNotExist", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, []string{corpus}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: err = %v", err)
	}
}

func TestParseSeverity(t *testing.T) {
	for _, s := range []Severity{SeverityNone, SeverityNote, SeverityWarning, SeverityError} {
		got, err := ParseSeverity(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("critical"); err == nil {
		t.Error("ParseSeverity(critical) did not fail")
	}
}
