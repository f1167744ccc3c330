// Package audit finds the long-lived credentials and the risky settings in CI
// pipeline definitions that stand between a pipeline and provable builds.
//
// [Scan] reads GitHub Actions workflows (.github/workflows/*.yml) and composite
// actions (action.yml), GitLab CI files (.gitlab-ci.yml and the files it
// includes with include:local) and Tekton resources (Task, Pipeline,
// PipelineRun, TaskRun, StepAction), and reports each problem with its file,
// line, rule and the migration that removes it: a `trustfabric identity`
// exchange of the job's OIDC token, or a cloud's OIDC federation.
//
// # Rules
//
// [Rules] lists them. Usage rules look at how a credential is used (a
// password given to `docker login`, a cosign key from the environment, static
// cloud keys); the hard-coded secret rule looks at the bytes of every file
// (known token formats, private key headers, and high-entropy values under
// secret-looking keys). A secret value never leaves this package: findings
// carry only a fingerprint, the first 8 hex digits of its SHA-256.
//
// # Accepting a finding
//
// A comment `trustfabric-audit: accept RULE-ID[,RULE-ID] reason` on the line
// of a finding, or on the line above it, records that the risk was
// considered: the finding is kept, with its reason, at severity note (and as
// an in-source suppression in SARIF).
//
// # Limits
//
// Files larger than 1 MiB are reported as errors and not read; a scan reads at
// most 20,000 files and follows GitLab local includes 8 levels deep, never
// outside the directory of the including .gitlab-ci.yml.
package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Limits on untrusted input.
const (
	maxFileSize     = 1 << 20
	maxFiles        = 20000
	maxIncludeDepth = 8
)

// Sentinel errors. A [FileError] wraps one of them.
var (
	// ErrTooLarge reports a file over the 1 MiB limit.
	ErrTooLarge = errors.New("file too large")
	// ErrParse reports a file that is not valid YAML for its kind.
	ErrParse = errors.New("cannot parse")
	// ErrTooManyFiles reports a scan that would read more than 20,000 files.
	ErrTooManyFiles = errors.New("too many files")
)

// FileError is a file that could not be audited. The rest of the scan goes on.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Kind is the kind of pipeline definition a file holds.
type Kind string

// Kinds of file.
const (
	KindGitHubWorkflow Kind = "github-workflow"
	KindGitHubAction   Kind = "github-action"
	KindGitLab         Kind = "gitlab-ci"
	KindTekton         Kind = "tekton"
	KindOther          Kind = "yaml" // scanned for hard-coded secrets only
)

// Finding is one problem found in one place.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column,omitempty"`
	Message  string   `json:"message"`
	// Fix is the migration: what replaces the credential or setting.
	Fix string `json:"fix"`
	// Fingerprint identifies a hard-coded secret without revealing it: the
	// first 8 hex digits of the SHA-256 of its value.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Accepted is the reason given in a trustfabric-audit: accept comment;
	// the finding's severity is then note.
	Accepted string `json:"accepted,omitempty"`
	// Original is the rule's severity before an acceptance lowered it.
	Original Severity `json:"-"`
}

// Report is the result of a scan.
type Report struct {
	Files    []ScannedFile `json:"files"`
	Findings []Finding     `json:"findings"`
	Errors   []*FileError  `json:"-"`
}

// ScannedFile is a file the scan read, and how it read it.
type ScannedFile struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
}

// Count returns the number of findings at or above min.
func (r *Report) Count(min Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= min {
			n++
		}
	}
	return n
}

type options struct {
	refPinOwners []string
}

// Option configures [Scan].
type Option func(*options) error

// WithRefPinAllowed lets actions of the given owners ("owner" or
// "owner/repo") be referenced by tag or branch: their unpinned-action findings
// are notes rather than warnings. By default this holds for actions/ and
// github/ (GitHub's own actions).
func WithRefPinAllowed(owners ...string) Option {
	return func(o *options) error {
		for _, s := range owners {
			s = strings.Trim(strings.TrimSpace(s), "/")
			if s == "" || strings.Count(s, "/") > 1 {
				return fmt.Errorf("ref-pin owner %q: want OWNER or OWNER/REPO", s)
			}
			o.refPinOwners = append(o.refPinOwners, strings.ToLower(s))
		}
		return nil
	}
}

// Scan audits the files and directories in paths. A directory is walked
// (skipping .git, node_modules, vendor and testdata); in it, every .yml and
// .yaml file is classified by its place and content. A named file is always
// read. Files that cannot be read or parsed are listed in Report.Errors; Scan
// itself fails only when a path does not exist, the context ends, or the scan
// exceeds its limits.
func Scan(ctx context.Context, paths []string, opts ...Option) (*Report, error) {
	o := options{refPinOwners: []string{"actions", "github"}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", p, err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && skipDir(d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if isYAML(path) {
				files = append(files, path)
			}
			if len(files) > maxFiles {
				return fmt.Errorf("%w: more than %d under %s", ErrTooManyFiles, maxFiles, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", p, err)
		}
	}
	s := &scanner{opts: o, seen: map[string]bool{}, report: &Report{}}
	// The files are independent: scan them on every CPU, then merge in
	// order and follow GitLab includes.
	var unique []string
	for _, f := range files {
		if c := filepath.Clean(f); !s.seen[c] {
			s.seen[c] = true
			unique = append(unique, f)
		}
	}
	results := make([]fileResult, len(unique))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(unique)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(unique) || ctx.Err() != nil {
					return
				}
				results[i] = scanFile(unique[i], "", o)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, r := range results {
		s.merge(unique[i], r, 0, "")
	}
	slices.SortStableFunc(s.report.Findings, func(a, b Finding) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return s.report, nil
}

func skipDir(name string) bool {
	switch name {
	case ".git", "node_modules", "vendor", "testdata":
		return true
	case ".github", ".gitlab", ".tekton":
		return false
	}
	return strings.HasPrefix(name, ".")
}

func isYAML(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yml" || ext == ".yaml"
}

type scanner struct {
	opts   options
	seen   map[string]bool
	report *Report
}

// fileResult is what scanning one file gave.
type fileResult struct {
	file     *ScannedFile
	findings []Finding
	includes []string
	errs     []error
}

// scanFile reads and audits one file; kind is empty unless the file is
// known (an include).
func scanFile(path string, kind Kind, o options) fileResult {
	data, err := readLimited(path)
	if err != nil {
		return fileResult{errs: []error{err}}
	}
	if kind == "" {
		kind = classify(path, data)
	}
	name := displayPath(path)
	fs, includes, err := scanBytes(kind, name, data, o)
	r := fileResult{file: &ScannedFile{Path: name, Kind: kind}, findings: fs, includes: includes}
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return r
}

// merge adds a file's result to the report and audits its includes; root
// is the directory GitLab local includes are relative to.
func (s *scanner) merge(path string, r fileResult, depth int, root string) {
	if r.file != nil {
		s.report.Files = append(s.report.Files, *r.file)
	}
	for _, err := range r.errs {
		s.fail(path, err)
	}
	s.report.Findings = append(s.report.Findings, r.findings...)
	if depth >= maxIncludeDepth && len(r.includes) > 0 {
		s.fail(path, fmt.Errorf("%w: includes nested deeper than %d", ErrParse, maxIncludeDepth))
		return
	}
	if root == "" {
		root = filepath.Dir(path)
	}
	for _, inc := range r.includes {
		matches, err := resolveInclude(root, inc)
		if err != nil {
			s.fail(path, err)
			continue
		}
		for _, m := range matches {
			c := filepath.Clean(m)
			if s.seen[c] {
				continue
			}
			s.seen[c] = true
			if len(s.seen) > maxFiles {
				s.fail(path, fmt.Errorf("%w: more than %d", ErrTooManyFiles, maxFiles))
				return
			}
			s.merge(m, scanFile(m, KindGitLab, s.opts), depth+1, root)
		}
	}
}

func (s *scanner) fail(path string, err error) {
	s.report.Errors = append(s.report.Errors, &FileError{File: displayPath(path), Err: err})
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() > maxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, info.Size(), maxFileSize)
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > maxFileSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxFileSize)
	}
	return buf, nil
}

func displayPath(path string) string {
	if !filepath.IsAbs(path) {
		return filepath.ToSlash(filepath.Clean(path))
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.ToSlash(path)
}

var (
	reTekton   = regexp.MustCompile(`(?m)^apiVersion:\s*["']?tekton\.dev/`)
	reOn       = regexp.MustCompile(`(?m)^["']?on["']?\s*:`)
	reJobs     = regexp.MustCompile(`(?m)^jobs\s*:`)
	reRuns     = regexp.MustCompile(`(?m)^runs\s*:`)
	reGitLabKw = regexp.MustCompile(`(?m)^(?:[ \t]+(?:script|trigger)\s*:|(?:include|stages)\s*:)`)
)

// classify decides what a file holds from its path, then its content.
func classify(path string, data []byte) Kind {
	slash := filepath.ToSlash(path)
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.Contains(slash, ".github/workflows/"):
		return KindGitHubWorkflow
	case base == "action.yml" || base == "action.yaml":
		return KindGitHubAction
	case strings.HasSuffix(base, ".gitlab-ci.yml") || strings.HasSuffix(base, ".gitlab-ci.yaml"):
		return KindGitLab
	case reTekton.Match(data):
		return KindTekton
	case reOn.Match(data) && reJobs.Match(data):
		return KindGitHubWorkflow
	case reRuns.Match(data) && bytes.Contains(data, []byte("using:")):
		return KindGitHubAction
	case reGitLabKw.Match(data):
		return KindGitLab
	}
	return KindOther
}

// scanBytes audits the bytes of one file of a known kind; it is the entry
// point of every parser (and of the fuzz tests). includes are GitLab local
// include patterns.
func scanBytes(kind Kind, name string, data []byte, o options) (fs []Finding, includes []string, err error) {
	c := &collector{file: name, lines: splitLines(data)}
	switch kind {
	case KindGitHubWorkflow:
		err = scanWorkflow(c, data, o)
	case KindGitHubAction:
		err = scanAction(c, data, o)
	case KindGitLab:
		includes, err = scanGitLab(c, data)
	case KindTekton:
		err = scanTekton(c, data)
	}
	scanSecrets(c)
	c.applyAcceptance()
	return c.findings, includes, err
}
