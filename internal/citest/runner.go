package citest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ErrUnknownContext is returned for an expression the harness does not model.
var ErrUnknownContext = errors.New("expression outside the harness's contexts")

// RunOptions describes one run of a composite action by the fake runner.
type RunOptions struct {
	// Inputs are the with: values; missing inputs take their defaults.
	Inputs map[string]string
	// Env is the job environment (GITHUB_*, ACTIONS_ID_TOKEN_REQUEST_*, …),
	// added to a minimal PATH/HOME environment.
	Env map[string]string
	// GitHub holds the github context fields the actions read: action_ref,
	// action_repository, actor, token.
	GitHub map[string]string
	// Workspace is the working directory of every step (GITHUB_WORKSPACE).
	Workspace string
	// RunnerTemp is RUNNER_TEMP; a fresh directory when empty.
	RunnerTemp string
}

// Annotation is an ::error/::warning/::notice workflow command.
type Annotation struct{ Level, Title, Message string }

// RunResult is what the runner would have recorded for the action.
type RunResult struct {
	ExitCode    int    // of the first failing step, or 0
	FailedStep  string // its id (or index)
	Outputs     map[string]string
	StepOutputs map[string]map[string]string
	Summary     string   // the job summary written by all steps
	Path        []string // lines added to GITHUB_PATH
	Stdout      string
	Stderr      string
	Masks       []string
	Annotations []Annotation
}

// RunComposite runs the shell steps of the composite action in dir as the
// GitHub runner does: inputs and step outputs are evaluated into each step's
// env:, the step runs with `bash --noprofile --norc -eo pipefail`, and
// GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH and GITHUB_ENV are files the
// runner reads back after each step. The action must pass CheckAction, whose
// rules guarantee the expressions this harness evaluates are all it needs.
func RunComposite(ctx context.Context, dir string, opts RunOptions) (*RunResult, error) {
	a, err := LoadAction(filepath.Join(dir, "action.yml"))
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	temp := opts.RunnerTemp
	if temp == "" {
		if temp, err = os.MkdirTemp("", "runner-temp-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(temp)
	}
	files, err := os.MkdirTemp("", "runner-files-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(files)

	res := &RunResult{Outputs: map[string]string{}, StepOutputs: map[string]map[string]string{}}
	jobEnv := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "CI": "true",
		"GOPATH": os.Getenv("GOPATH"), "GOCACHE": os.Getenv("GOCACHE"), "GOMODCACHE": os.Getenv("GOMODCACHE"),
		"GOFLAGS": os.Getenv("GOFLAGS"), "GOPROXY": os.Getenv("GOPROXY"), "GOTOOLCHAIN": "local",
	}
	if jobEnv["GOCACHE"] == "" {
		if c, err := os.UserCacheDir(); err == nil {
			jobEnv["GOCACHE"] = filepath.Join(c, "go-build")
		}
	}
	for k, v := range opts.Env {
		jobEnv[k] = v
	}
	jobEnv["RUNNER_TEMP"] = temp
	jobEnv["GITHUB_ACTION_PATH"] = dir
	if opts.Workspace != "" {
		jobEnv["GITHUB_WORKSPACE"] = opts.Workspace
	}
	pathFile := filepath.Join(files, "path")
	envFile := filepath.Join(files, "env")
	summary := &strings.Builder{}
	var stdout, stderr bytes.Buffer

	eval := func(s string) (string, error) { return evalExpr(s, a, opts, res.StepOutputs) }
	for i, st := range a.Runs.Steps {
		name := st.ID
		if name == "" {
			name = fmt.Sprintf("%d", i+1)
		}
		if st.Run == "" {
			return nil, fmt.Errorf("step %s: only run steps are supported", name)
		}
		env := map[string]string{}
		for k, v := range jobEnv {
			env[k] = v
		}
		for k, v := range st.Env {
			ev, err := eval(v)
			if err != nil {
				return nil, fmt.Errorf("step %s env %s: %w", name, k, err)
			}
			env[k] = ev
		}
		outFile := filepath.Join(files, "output-"+name)
		sumFile := filepath.Join(files, "summary-"+name)
		for _, f := range []string{outFile, sumFile, pathFile, envFile} {
			fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return nil, err
			}
			fh.Close()
		}
		env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"] = outFile, sumFile
		env["GITHUB_PATH"], env["GITHUB_ENV"] = pathFile, envFile
		script := filepath.Join(files, "step-"+name+".sh")
		if err := os.WriteFile(script, []byte(st.Run), 0o700); err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Env = flatten(env)
		cmd.Dir = opts.Workspace
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		runErr := cmd.Run()
		stdout.Write(so.Bytes())
		stderr.Write(se.Bytes())
		parseCommands(so.String(), res)

		outs, err := readKV(outFile)
		if err != nil {
			return nil, fmt.Errorf("step %s: GITHUB_OUTPUT: %w", name, err)
		}
		if st.ID != "" {
			res.StepOutputs[st.ID] = outs
		}
		if b, err := os.ReadFile(sumFile); err == nil {
			summary.Write(b)
		}
		// GITHUB_PATH and GITHUB_ENV apply to the steps that follow.
		if b, err := os.ReadFile(pathFile); err == nil {
			res.Path = nil
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" {
					res.Path = append(res.Path, l)
				}
			}
			if len(res.Path) > 0 {
				jobEnv["PATH"] = strings.Join(res.Path, string(os.PathListSeparator)) + string(os.PathListSeparator) + os.Getenv("PATH")
			}
		}
		if kv, err := readKV(envFile); err == nil {
			for k, v := range kv {
				jobEnv[k] = v
			}
		}
		if runErr != nil {
			var ee *exec.ExitError
			if !errors.As(runErr, &ee) {
				return nil, fmt.Errorf("step %s: %w", name, runErr)
			}
			res.ExitCode, res.FailedStep = ee.ExitCode(), name
			break
		}
	}
	res.Summary, res.Stdout, res.Stderr = summary.String(), stdout.String(), stderr.String()
	if res.ExitCode == 0 {
		for name, o := range a.Outputs {
			v, err := eval(o.Value)
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", name, err)
			}
			res.Outputs[name] = v
		}
	}
	return res, nil
}

// evalExpr replaces every ${{ … }} in s.
func evalExpr(s string, a *Action, opts RunOptions, steps map[string]map[string]string) (string, error) {
	var firstErr error
	out := exprRE.ReplaceAllStringFunc(s, func(m string) string {
		e := exprRE.FindStringSubmatch(m)[1]
		switch {
		case inputRefRE.MatchString(e):
			name := inputRefRE.FindStringSubmatch(e)[1]
			if v, ok := opts.Inputs[name]; ok {
				return v
			}
			in, ok := a.Inputs[name]
			if !ok || in.Default == nil {
				return ""
			}
			v, err := evalExpr(*in.Default, a, opts, steps)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return v
		case stepOutRE.MatchString(e):
			sm := stepOutRE.FindStringSubmatch(e)
			return steps[sm[1]][sm[2]]
		case githubCtxRE.MatchString(e):
			return opts.GitHub[strings.TrimPrefix(e, "github.")]
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: ${{ %s }}", ErrUnknownContext, e)
		}
		return ""
	})
	return out, firstErr
}

// readKV parses a GITHUB_OUTPUT/GITHUB_ENV file: name=value lines and
// name<<DELIMITER blocks.
func readKV(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("unterminated value for %s", name)
			}
			kv[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		kv[name] = val
	}
	return kv, sc.Err()
}

// parseCommands records ::add-mask:: and annotation workflow commands.
func parseCommands(stdout string, res *RunResult) {
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "::") {
			continue
		}
		cmdAndProps, msg, ok := strings.Cut(line[2:], "::")
		if !ok {
			continue
		}
		cmd, props, _ := strings.Cut(cmdAndProps, " ")
		switch cmd {
		case "add-mask":
			res.Masks = append(res.Masks, msg)
		case "error", "warning", "notice":
			an := Annotation{Level: cmd, Message: unescapeData(msg)}
			for _, p := range strings.Split(props, ",") {
				if k, v, ok := strings.Cut(p, "="); ok && k == "title" {
					an.Title = unescapeProperty(v)
				}
			}
			res.Annotations = append(res.Annotations, an)
		}
	}
}

func unescapeData(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(s)
}

func unescapeProperty(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%").Replace(s)
}

func flatten(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
