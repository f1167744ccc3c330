package attest

import (
	"github.com/trustfabric/trustfabric/internal/atomicfile"

	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"
)

// Names of the facts each platform receives (specs/ci.md §1.5, §2, §3; the
// action.yml outputs, the GitLab component's dotenv report and the Tekton
// task's results use the same names).
const (
	OutputEntryID        = "entry-id"
	OutputLogIndex       = "log-index"
	OutputTreeSize       = "tree-size"
	OutputReferrerDigest = "referrer-digest"
	OutputStatementPath  = "statement-path"

	// DefaultDotenvFile is the GitLab dotenv report written when GITLAB_CI is
	// set and no file is named.
	DefaultDotenvFile = "trustfabric.env"
	// EnvTektonResultsDir names the Tekton results directory when no flag
	// does (the Trustfabric task sets it to /tekton/results).
	EnvTektonResultsDir = "TRUSTFABRIC_TEKTON_RESULTS_DIR"
	// maxSummary bounds the Markdown summary (GitHub refuses more than 1 MiB
	// per step).
	maxSummary = 64 << 10
	// maxTektonResult bounds each Tekton result (the 4096-byte budget is
	// shared by all results of a step).
	maxTektonResult = 1024
)

// githubDelimiter is the fixed heredoc delimiter go-githubactions v1.3.2 uses
// for $GITHUB_OUTPUT; a value containing it would end the value early.
const githubDelimiter = "_GitHubActionsFileCommandDelimeter_"

// ErrOutput is wrapped when a CI output file cannot be written or a value
// cannot be represented in it.
var ErrOutput = errors.New("cannot write CI outputs")

// OutputOptions say where WriteOutputs publishes a result.
type OutputOptions struct {
	// Getenv reads the environment. Default os.Getenv.
	Getenv func(string) string
	// DotenvFile is the GitLab dotenv report to write. Default:
	// DefaultDotenvFile when GITLAB_CI is "true", none otherwise.
	DotenvFile string
	// TektonResultsDir is the directory holding Tekton result files
	// ($(results.NAME.path) is DIR/NAME). Default: $TRUSTFABRIC_TEKTON_RESULTS_DIR;
	// none when that is empty too.
	TektonResultsDir string
}

// WriteOutputs publishes the facts of r (and, if runErr is not nil, that the
// run failed) where the CI platform reads them: GitHub Actions step outputs
// ($GITHUB_OUTPUT) and a Markdown job summary ($GITHUB_STEP_SUMMARY), a GitLab
// dotenv report, Tekton result files. It returns the files written. Facts
// that are not known (a failed run) are left out.
func WriteOutputs(r *Result, runErr error, o OutputOptions) ([]string, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var written []string
	var errs []error
	if getenv("GITHUB_ACTIONS") == "true" {
		w, err := writeGitHub(r, runErr, getenv)
		written = append(written, w...)
		errs = append(errs, err)
	}
	dotenv := o.DotenvFile
	if dotenv == "" && getenv("GITLAB_CI") == "true" {
		dotenv = DefaultDotenvFile
	}
	if dotenv != "" {
		if err := writeDotenv(dotenv, r); err != nil {
			errs = append(errs, err)
		} else {
			written = append(written, dotenv)
		}
	}
	dir := o.TektonResultsDir
	if dir == "" {
		dir = getenv(EnvTektonResultsDir)
	}
	if dir != "" {
		w, err := writeTekton(dir, r)
		written = append(written, w...)
		errs = append(errs, err)
	}
	return written, errors.Join(errs...)
}

// facts returns the known facts as (name, value) pairs, in a fixed order.
func facts(r *Result) [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	add(OutputEntryID, r.EntryID)
	if r.TreeSize > 0 {
		add(OutputLogIndex, strconv.FormatUint(r.LogIndex, 10))
		add(OutputTreeSize, strconv.FormatUint(r.TreeSize, 10))
	}
	add(OutputReferrerDigest, r.ReferrerDigest)
	add(OutputStatementPath, r.StatementPath)
	return out
}

func checkValue(name, v string) error {
	if strings.ContainsAny(v, "\r\n") || strings.Contains(v, githubDelimiter) {
		return fmt.Errorf("%w: %s %q spans lines", ErrOutput, name, v)
	}
	return nil
}

func writeGitHub(r *Result, runErr error, getenv func(string) string) (written []string, err error) {
	// go-githubactions panics when a file command fails; turn that into an error.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrOutput, p)
		}
	}()
	a := githubactions.New(githubactions.WithGetenv(getenv))
	if path := getenv("GITHUB_OUTPUT"); path != "" && runErr == nil {
		for _, f := range facts(r) {
			if err := checkValue(f[0], f[1]); err != nil {
				return written, err
			}
		}
		for _, f := range facts(r) {
			a.SetOutput(f[0], f[1])
		}
		written = append(written, path)
	}
	if path := getenv("GITHUB_STEP_SUMMARY"); path != "" {
		s := Summary(r, runErr)
		if len(s) > maxSummary {
			s = s[:maxSummary] + "\n\n(truncated)\n"
		}
		a.AddStepSummary(s)
		written = append(written, path)
	}
	return written, nil
}

// Summary renders r as the Markdown of a GitHub job summary.
func Summary(r *Result, runErr error) string {
	var b strings.Builder
	if runErr == nil {
		b.WriteString("### Trustfabric: attested\n\n")
	} else if errors.Is(runErr, ErrNotAttached) {
		b.WriteString("### Trustfabric: registered but not attached\n\n")
	} else {
		b.WriteString("### Trustfabric attest failed\n\n")
	}
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string, code bool) {
		if v == "" {
			return
		}
		v = mdCell(v)
		if code {
			v = "`" + v + "`"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", k, v)
	}
	row("Image", r.Subject, true)
	if r.Subject == "" {
		row("Image", r.Image, true)
	}
	row("Workload identity", r.WorkloadID, true)
	row("Predicate type", r.PredicateType, true)
	row("Transparency service", r.TSURL, false)
	row("Entry id", r.EntryID, true)
	if r.TreeSize > 0 {
		row("Log index", fmt.Sprintf("%d (tree size %d)", r.LogIndex, r.TreeSize), false)
	}
	row("Referrer", r.Referrer, true)
	row("Statement", r.StatementPath, true)
	b.WriteString("\n| Step | Time |\n|---|---|\n")
	for _, s := range r.Steps {
		status := ""
		if s.Err != nil {
			status = " (failed)"
		}
		fmt.Fprintf(&b, "| %s%s | %s |\n", s.Name, status, formatDuration(s.Duration))
	}
	if runErr != nil {
		fmt.Fprintf(&b, "\n```\n%s\n```\n", strings.ReplaceAll(runErr.Error(), "```", "'''"))
	}
	b.WriteString("\n")
	return b.String()
}

// mdCell makes v safe inside a Markdown table cell in backticks.
func mdCell(v string) string {
	return strings.NewReplacer("|", `\|`, "`", "'", "\n", " ", "\r", " ").Replace(v)
}

// dotenvName maps a fact to its GitLab variable (TRUSTFABRIC_ENTRY_ID, …).
func dotenvName(fact string) string {
	return "TRUSTFABRIC_" + strings.ToUpper(strings.ReplaceAll(fact, "-", "_"))
}

func writeDotenv(path string, r *Result) error {
	var b strings.Builder
	for _, f := range facts(r) {
		if err := checkValue(f[0], f[1]); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s=%s\n", dotenvName(f[0]), f[1])
	}
	if err := atomicfile.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("%w: dotenv report: %w", ErrOutput, err)
	}
	return nil
}

// Tekton result names declared by tekton/task/trustfabric-attest.
var tektonResults = []struct {
	name string
	val  func(*Result) string
}{
	{"ENTRY_ID", func(r *Result) string { return r.EntryID }},
	{"LOG_INDEX", func(r *Result) string {
		if r.TreeSize == 0 {
			return ""
		}
		return strconv.FormatUint(r.LogIndex, 10)
	}},
	{"REFERRER_DIGEST", func(r *Result) string { return r.ReferrerDigest }},
	{"REFERRER_URI", func(r *Result) string { return r.Referrer }},
}

func writeTekton(dir string, r *Result) ([]string, error) {
	var written []string
	for _, t := range tektonResults {
		v := t.val(r)
		if v == "" {
			continue
		}
		if len(v) > maxTektonResult {
			return written, fmt.Errorf("%w: Tekton result %s is %d bytes (limit %d)", ErrOutput, t.name, len(v), maxTektonResult)
		}
		p := filepath.Join(dir, t.name)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return written, fmt.Errorf("%w: Tekton result: %w", ErrOutput, err)
		}
		written = append(written, p)
	}
	return written, nil
}
