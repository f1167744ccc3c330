package audit

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var reFingerprint = regexp.MustCompile(`^[0-9a-f]{8}$`)

// fuzzKind fuzzes the parser of one kind, seeded from the corpus files of
// that kind. Invariants: no panic, known rules, lines inside the file, and a
// hard-coded secret's message never carries the bytes at its position.
func fuzzKind(f *testing.F, kind Kind) {
	err := filepath.WalkDir(corpus, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAML(path) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if classify(path, data) == kind {
			f.Add(data)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("jobs: {j: {steps: [{run: '${{ github.event.issue.title }}'}]}}\non: push\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFileSize {
			return
		}
		fs, _, _ := scanBytes(kind, "f.yml", data, options{refPinOwners: []string{"actions"}})
		lines := strings.Split(string(data), "\n")
		for _, fd := range fs {
			if fd.Line < 1 || fd.Line > len(lines)+1 {
				t.Fatalf("%s finding at line %d of a %d-line file", fd.Rule, fd.Line, len(lines))
			}
			_ = ruleByID(fd.Rule) // panics on an unknown rule
			if fd.Rule != RuleHardcodedSecret {
				continue
			}
			if !reFingerprint.MatchString(fd.Fingerprint) {
				t.Fatalf("fingerprint %q", fd.Fingerprint)
			}
			ln := lines[fd.Line-1]
			if fd.Column >= 1 && fd.Column-1+12 <= len(ln) {
				if at := ln[fd.Column-1 : fd.Column-1+12]; strings.Contains(fd.Message, at) {
					t.Fatalf("message %q repeats the secret's bytes %q", fd.Message, at)
				}
			}
		}
	})
}

func FuzzGitHubWorkflow(f *testing.F) { fuzzKind(f, KindGitHubWorkflow) }
func FuzzGitHubAction(f *testing.F)   { fuzzKind(f, KindGitHubAction) }
func FuzzGitLab(f *testing.F)         { fuzzKind(f, KindGitLab) }
func FuzzTekton(f *testing.F)         { fuzzKind(f, KindTekton) }

// FuzzClassify: any bytes get a kind without panicking.
func FuzzClassify(f *testing.F) {
	f.Add("x/.github/workflows/a.yml", []byte("on: push\njobs: {}\n"))
	f.Add("action.yml", []byte("runs:\n  using: composite\n"))
	f.Add("p.yaml", []byte("apiVersion: tekton.dev/v1\nkind: Task\n"))
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		k := classify(path, data)
		switch k {
		case KindGitHubWorkflow, KindGitHubAction, KindGitLab, KindTekton, KindOther:
		default:
			t.Fatalf("kind %q", k)
		}
	})
}
