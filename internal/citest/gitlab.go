package citest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// Sentinels for the GitLab component rules; CheckComponent's problems wrap one.
var (
	ErrSchema         = errors.New("does not validate against GitLab's CI schema")
	ErrUntypedInput   = errors.New("spec input without a type")
	ErrNotComponent   = errors.New("not a component: want a spec header, ---, and a body")
	ErrMissingFixture = errors.New("required input has no test value")
)

// gitlabSchemaID is the $id of GitLab's CI schema.
const gitlabSchemaID = "https://gitlab.com/.gitlab-ci.yml"

// LoadGitLabSchema compiles the vendored GitLab CI JSON schema.
func LoadGitLabSchema(path string) (*jsonschema.Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open gitlab schema: %w", err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("parse gitlab schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(gitlabSchemaID, doc); err != nil {
		return nil, fmt.Errorf("add gitlab schema: %w", err)
	}
	s, err := c.Compile(gitlabSchemaID)
	if err != nil {
		return nil, fmt.Errorf("compile gitlab schema: %w", err)
	}
	return s, nil
}

// ValidateGitLabDoc validates one YAML document (already decoded) against s.
func ValidateGitLabDoc(s *jsonschema.Schema, doc any) error {
	// Round-trip through JSON so that the instance has exactly the types the
	// validator expects (json.Number, map[string]any, []any).
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode document: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("decode document: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%w: %w", ErrSchema, err)
	}
	return nil
}

// splitYAML decodes every document of a YAML stream into nodes.
func splitYAML(b []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}

// SpecInput is one input of a component's spec header.
type SpecInput struct {
	Type        string `yaml:"type"`
	Description string `yaml:"description"`
	Default     any    `yaml:"default"`
	HasDefault  bool   `yaml:"-"`
}

var interpRE = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]`)

// CheckComponent checks a GitLab CI/CD component file: the header and the body
// each validate against the schema (the body after interpolating inputs with
// their defaults, or with fixtures for inputs that have none); every input is
// typed and documented; every $[[ inputs.x ]] is declared and every input used.
func CheckComponent(path string, s *jsonschema.Schema, fixtures map[string]any) []error {
	b, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	var errs []error
	add := func(sentinel error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w: %s", path, sentinel, fmt.Sprintf(format, args...)))
	}
	docs, err := splitYAML(b)
	if err != nil {
		return []error{fmt.Errorf("%s: %w: %w", path, ErrSchema, err)}
	}
	if len(docs) != 2 {
		add(ErrNotComponent, "%d documents", len(docs))
		return errs
	}
	var header any
	if err := docs[0].Decode(&header); err != nil {
		add(ErrSchema, "header: %v", err)
		return errs
	}
	if err := ValidateGitLabDoc(s, header); err != nil {
		add(ErrSchema, "header: %v", err)
	}
	inputs, err := specInputs(docs[0])
	if err != nil {
		add(ErrNotComponent, "%v", err)
		return errs
	}
	values := map[string]any{}
	for name, in := range inputs {
		if in.Type == "" {
			add(ErrUntypedInput, "%s", name)
		}
		if strings.TrimSpace(in.Description) == "" {
			add(ErrUndocumented, "input %s", name)
		}
		switch v, ok := fixtures[name]; {
		case ok:
			values[name] = v
		case in.HasDefault:
			values[name] = in.Default
		default:
			add(ErrMissingFixture, "%s", name)
			values[name] = ""
		}
	}
	used := map[string]bool{}
	body := docs[1]
	interpolate(body, values, used, func(name string) {
		add(ErrUndeclaredInput, "$[[ inputs.%s ]]", name)
	})
	for name := range inputs {
		if !used[name] {
			add(ErrUnusedInput, "%s", name)
		}
	}
	var doc any
	if err := body.Decode(&doc); err != nil {
		add(ErrSchema, "body: %v", err)
		return errs
	}
	if err := ValidateGitLabDoc(s, doc); err != nil {
		add(ErrSchema, "body: %v", err)
	}
	return errs
}

// specInputs reads spec.inputs from the header node.
func specInputs(header *yaml.Node) (map[string]SpecInput, error) {
	var h struct {
		Spec struct {
			Inputs map[string]yaml.Node `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := header.Decode(&h); err != nil {
		return nil, err
	}
	if h.Spec.Inputs == nil {
		return nil, errors.New("header has no spec.inputs")
	}
	out := map[string]SpecInput{}
	for name, n := range h.Spec.Inputs {
		var in SpecInput
		if err := n.Decode(&in); err != nil {
			return nil, fmt.Errorf("input %s: %w", name, err)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "default" {
				in.HasDefault = true
			}
		}
		out[name] = in
	}
	return out, nil
}

// interpolate replaces $[[ inputs.x ]] in every scalar of n. A scalar that is
// exactly one interpolation takes the input's typed value (as GitLab does for
// arrays and booleans); otherwise the value is spliced in as text.
func interpolate(n *yaml.Node, values map[string]any, used map[string]bool, undeclared func(string)) {
	for _, c := range n.Content {
		interpolate(c, values, used, undeclared)
	}
	if n.Kind != yaml.ScalarNode || !interpRE.MatchString(n.Value) {
		return
	}
	whole := interpRE.FindStringSubmatchIndex(n.Value)
	for _, m := range interpRE.FindAllStringSubmatch(n.Value, -1) {
		used[m[1]] = true
		if _, ok := values[m[1]]; !ok {
			undeclared(m[1])
		}
	}
	if whole[0] == 0 && whole[1] == len(n.Value) {
		name := n.Value[whole[2]:whole[3]]
		var repl yaml.Node
		if err := repl.Encode(values[name]); err == nil {
			*n = repl
			return
		}
	}
	n.Value = interpRE.ReplaceAllStringFunc(n.Value, func(s string) string {
		name := interpRE.FindStringSubmatch(s)[1]
		switch v := values[name].(type) {
		case string:
			return v
		case bool:
			return strconv.FormatBool(v)
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	})
	n.Tag = "!!str"
	n.Style = 0
}

// ComponentJobs lists the job names a component body defines.
func ComponentJobs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := splitYAML(b)
	if err != nil || len(docs) != 2 {
		return nil, fmt.Errorf("%s: %w", path, ErrNotComponent)
	}
	var body map[string]any
	if err := docs[1].Decode(&body); err != nil {
		return nil, err
	}
	var jobs []string
	for k := range body {
		jobs = append(jobs, k)
	}
	slices.Sort(jobs)
	return jobs, nil
}
