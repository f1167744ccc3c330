package citest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Sentinels for the rules CheckAction enforces; every problem it reports wraps
// exactly one of them.
var (
	ErrMalformedAction = errors.New("action metadata does not parse strictly")
	ErrMissingField    = errors.New("required field missing")
	ErrUndocumented    = errors.New("input or output without a description")
	ErrUnwiredOutput   = errors.New("output not wired to a step that writes it")
	ErrExprInRun       = errors.New("expression expanded inside run")
	ErrNestedLocalUses = errors.New("composite step uses a local action")
	ErrNoShell         = errors.New("run step without shell")
	ErrUndeclaredInput = errors.New("reference to an undeclared input")
	ErrUnusedInput     = errors.New("declared input never used")
	ErrBadExpression   = errors.New("expression outside the allowed contexts")
	ErrUnsupportedRuns = errors.New("runs.using is not composite")
)

// Action is the metadata of a composite action (action.yml), with every key
// GitHub documents for it; decoding rejects any other key.
type Action struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Author      string            `yaml:"author"`
	Branding    *Branding         `yaml:"branding"`
	Inputs      map[string]Input  `yaml:"inputs"`
	Outputs     map[string]Output `yaml:"outputs"`
	Runs        Runs              `yaml:"runs"`
}

// Branding is the Marketplace icon and colour.
type Branding struct {
	Icon  string `yaml:"icon"`
	Color string `yaml:"color"`
}

// Input is one action input.
type Input struct {
	Description        string  `yaml:"description"`
	Required           bool    `yaml:"required"`
	Default            *string `yaml:"default"`
	DeprecationMessage string  `yaml:"deprecationMessage"`
}

// Output is one composite action output.
type Output struct {
	Description string `yaml:"description"`
	Value       string `yaml:"value"`
}

// Runs is the runs section of a composite action.
type Runs struct {
	Using string `yaml:"using"`
	Steps []Step `yaml:"steps"`
}

// Step is one composite step.
type Step struct {
	ID               string            `yaml:"id"`
	If               string            `yaml:"if"`
	Name             string            `yaml:"name"`
	Run              string            `yaml:"run"`
	Shell            string            `yaml:"shell"`
	Uses             string            `yaml:"uses"`
	With             map[string]string `yaml:"with"`
	Env              map[string]string `yaml:"env"`
	WorkingDirectory string            `yaml:"working-directory"`
	ContinueOnError  string            `yaml:"continue-on-error"`
}

// LoadAction reads and strictly decodes an action.yml.
func LoadAction(path string) (*Action, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read action: %w", err)
	}
	return ParseAction(b)
}

// ParseAction strictly decodes action metadata: unknown keys are an error.
func ParseAction(b []byte) (*Action, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var a Action
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedAction, err)
	}
	return &a, nil
}

var (
	exprRE       = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)
	inputRefRE   = regexp.MustCompile(`^inputs\.([A-Za-z0-9_-]+)$`)
	stepOutRE    = regexp.MustCompile(`^steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)$`)
	scriptRunRE  = regexp.MustCompile(`^bash "\$GITHUB_ACTION_PATH/([A-Za-z0-9_./-]+\.sh)"$`)
	tfOutputRE   = regexp.MustCompile(`tf_output ([a-z0-9-]+) `)
	githubCtxRE  = regexp.MustCompile(`^github\.(action_ref|action_repository|actor|token)$`)
	allowedShell = []string{"bash"}
)

// CheckAction applies the house rules to the action whose metadata is at
// dir/action.yml and returns every problem found (nil when it passes). root
// says whether this is the Marketplace (root) action, which needs branding.
func CheckAction(dir string, root bool) []error {
	a, err := LoadAction(filepath.Join(dir, "action.yml"))
	if err != nil {
		return []error{err}
	}
	var errs []error
	add := func(sentinel error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w: %s", dir, sentinel, fmt.Sprintf(format, args...)))
	}
	if a.Name == "" {
		add(ErrMissingField, "name")
	}
	if a.Description == "" {
		add(ErrMissingField, "description")
	}
	if root && (a.Branding == nil || a.Branding.Icon == "" || a.Branding.Color == "") {
		add(ErrMissingField, "branding (icon and color) of the Marketplace action")
	}
	if a.Runs.Using != "composite" {
		add(ErrUnsupportedRuns, "using %q", a.Runs.Using)
	}
	for name, in := range a.Inputs {
		if strings.TrimSpace(in.Description) == "" {
			add(ErrUndocumented, "input %s", name)
		}
		if !in.Required && in.Default == nil {
			add(ErrMissingField, "optional input %s has no default", name)
		}
	}

	used := map[string]bool{}
	stepIDs := map[string]int{}
	stepWrites := map[string][]string{}
	checkExpr := func(where, s string, stepIndex int) {
		for _, m := range exprRE.FindAllStringSubmatch(s, -1) {
			e := m[1]
			switch {
			case inputRefRE.MatchString(e):
				name := inputRefRE.FindStringSubmatch(e)[1]
				if _, ok := a.Inputs[name]; !ok {
					add(ErrUndeclaredInput, "%s refers to inputs.%s", where, name)
				}
				used[name] = true
			case stepOutRE.MatchString(e):
				id := stepOutRE.FindStringSubmatch(e)[1]
				if i, ok := stepIDs[id]; !ok || i >= stepIndex {
					add(ErrUnwiredOutput, "%s refers to step %q, which is not an earlier step", where, id)
				}
			case githubCtxRE.MatchString(e):
			default:
				add(ErrBadExpression, "%s uses ${{ %s }}", where, e)
			}
		}
	}
	for i, st := range a.Runs.Steps {
		where := fmt.Sprintf("step %d", i+1)
		if st.ID != "" {
			where = fmt.Sprintf("step %s", st.ID)
		}
		if st.Run != "" {
			if st.Shell == "" {
				add(ErrNoShell, "%s", where)
			} else if !slices.Contains(allowedShell, st.Shell) {
				add(ErrNoShell, "%s uses shell %q, want bash", where, st.Shell)
			}
			if exprRE.MatchString(st.Run) {
				add(ErrExprInRun, "%s: pass values through env: instead", where)
			}
			if m := scriptRunRE.FindStringSubmatch(strings.TrimSpace(st.Run)); m != nil && st.ID != "" {
				script, err := os.ReadFile(filepath.Join(dir, m[1]))
				if err != nil {
					add(ErrUnwiredOutput, "%s runs %s, which cannot be read: %v", where, m[1], err)
				}
				for _, w := range tfOutputRE.FindAllStringSubmatch(string(script), -1) {
					stepWrites[st.ID] = append(stepWrites[st.ID], w[1])
				}
			}
		}
		if strings.HasPrefix(st.Uses, "./") || strings.HasPrefix(st.Uses, "../") {
			add(ErrNestedLocalUses, "%s uses %s, which resolves against the caller's workspace; share a script instead", where, st.Uses)
		}
		for k, v := range st.Env {
			checkExpr(where+" env "+k, v, i)
		}
		for k, v := range st.With {
			checkExpr(where+" with "+k, v, i)
		}
		checkExpr(where+" if", st.If, i)
		if st.ID != "" {
			stepIDs[st.ID] = i
		}
	}
	for name, in := range a.Inputs {
		if in.Default != nil {
			checkExpr("default of input "+name, *in.Default, len(a.Runs.Steps))
		}
		if !used[name] {
			add(ErrUnusedInput, "input %s", name)
		}
	}
	for name, out := range a.Outputs {
		if strings.TrimSpace(out.Description) == "" {
			add(ErrUndocumented, "output %s", name)
		}
		m := stepOutRE.FindStringSubmatch(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(out.Value), "${{"), "}}")))
		if m == nil {
			add(ErrUnwiredOutput, "output %s has value %q, want ${{ steps.<id>.outputs.<name> }}", name, out.Value)
			continue
		}
		if _, ok := stepIDs[m[1]]; !ok {
			add(ErrUnwiredOutput, "output %s refers to missing step %q", name, m[1])
			continue
		}
		if !slices.Contains(stepWrites[m[1]], m[2]) {
			add(ErrUnwiredOutput, "output %s: the script of step %s never writes %s", name, m[1], m[2])
		}
	}
	return errs
}
