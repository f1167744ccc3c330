package audit

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// GitLab CI: .gitlab-ci.yml, the files it includes with include:local, and
// CI/CD component templates (a spec: document, then the jobs).

// gitlabReserved are top-level keys that are not jobs.
var gitlabReserved = map[string]bool{
	"default": true, "include": true, "stages": true, "variables": true, "workflow": true,
	"image": true, "services": true, "cache": true, "before_script": true, "after_script": true,
	"spec": true,
}

// gitlabEphemeral are predefined variables that hold per-job credentials.
var gitlabEphemeral = map[string]bool{
	"CI_JOB_TOKEN": true, "CI_REGISTRY_PASSWORD": true, "CI_DEPENDENCY_PROXY_PASSWORD": true,
	"CI_JOB_JWT": true, "CI_JOB_JWT_V1": true, "CI_JOB_JWT_V2": true,
}

type gitlabPlatform struct {
	// defined are variables the file gives a value (not stored secrets) and
	// the job's id_tokens.
	defined map[string]bool
}

// secretRefs returns the credential-named variables a string expands that
// the file does not define: project or group CI/CD variables, that is
// stored secrets. The job token and registry password GitLab issues per job
// are not.
func (g gitlabPlatform) secretRefs(s string) []string {
	if !strings.Contains(s, "$") {
		return nil
	}
	var out []string
	for _, m := range reShellVar.FindAllStringSubmatch(s, -1) {
		name := m[1]
		if g.defined[name] || gitlabEphemeral[name] || classifyName(name) == "" {
			continue
		}
		if strings.HasPrefix(name, "CI_") && name != "CI_DEPLOY_PASSWORD" || strings.HasPrefix(name, "GITLAB_") {
			continue
		}
		out = append(out, name)
	}
	return out
}

type gitlabJob struct {
	name     string
	node     *yaml.Node
	line     int
	extends  []string
	idTokens bool
}

func scanGitLab(c *collector, data []byte) ([]string, error) {
	docs, err := decodeAll(data)
	if err != nil {
		return nil, err
	}
	var includes []string
	for _, doc := range docs {
		if doc.Kind != yaml.MappingNode {
			continue
		}
		if get(doc, "spec") != nil && len(doc.Content) == 2 {
			continue // a component's header document
		}
		includes = append(includes, gitlabIncludes(get(doc, "include"))...)
		scanGitLabDoc(c, doc)
	}
	return includes, nil
}

func scanGitLabDoc(c *collector, doc *yaml.Node) {
	globalVars := get(doc, "variables")
	defaultTokens := get(get(doc, "default"), "id_tokens") != nil
	jobs := map[string]*gitlabJob{}
	var order []*gitlabJob
	pairs(doc, func(k, v *yaml.Node) {
		if gitlabReserved[k.Value] || v == nil || v.Kind != yaml.MappingNode {
			return
		}
		j := &gitlabJob{name: k.Value, node: v, line: k.Line, idTokens: get(v, "id_tokens") != nil}
		if e := get(v, "extends"); e != nil {
			if s, ok := scalar(e); ok {
				j.extends = []string{s}
			}
			for _, it := range items(e) {
				if s, ok := scalar(it); ok {
					j.extends = append(j.extends, s)
				}
			}
		}
		jobs[j.name] = j
		order = append(order, j)
	})
	// Global variables.
	globalDefined := literalVars(globalVars)
	gp := gitlabPlatform{defined: globalDefined}
	globalEnv := yamlEnv(gp, globalVars)
	var none usage
	checkEnv(c, gp, globalEnv, nil, &none)
	var defaultScripts []text
	for _, key := range []string{"before_script", "after_script"} {
		defaultScripts = append(defaultScripts, scripts(get(doc, key))...)
		defaultScripts = append(defaultScripts, scripts(get(get(doc, "default"), key))...)
	}
	for _, t := range defaultScripts {
		st := &step{run: &t, env: globalEnv}
		checkStep(c, gp, st, &none)
	}
	for _, j := range order {
		defined := maps2(globalDefined, literalVars(get(j.node, "variables")))
		pairs(get(j.node, "id_tokens"), func(k, _ *yaml.Node) { defined[k.Value] = true })
		p := gitlabPlatform{defined: defined}
		jobVars := yamlEnv(p, get(j.node, "variables"))
		var u usage
		checkEnv(c, p, jobVars, nil, &u)
		env := merge(globalEnv, jobVars)
		for _, key := range []string{"before_script", "script", "after_script"} {
			for _, t := range scripts(get(j.node, key)) {
				st := &step{run: &t, env: env}
				checkStep(c, p, st, &u)
			}
		}
		if none.oidcCapable {
			u.oidcCapable = true
		}
		if u.oidcCapable && !strings.HasPrefix(j.name, ".") && !defaultTokens && !inheritsIDTokens(j, jobs, 0) {
			c.add(RuleMissingOIDC, j.line, 0, "job "+j.name+" uses long-lived credentials and has no id_tokens to replace them with OIDC")
		}
	}
}

func inheritsIDTokens(j *gitlabJob, jobs map[string]*gitlabJob, depth int) bool {
	if j.idTokens {
		return true
	}
	if depth > 10 {
		return false
	}
	for _, e := range j.extends {
		if p, ok := jobs[e]; ok && inheritsIDTokens(p, jobs, depth+1) {
			return true
		}
	}
	return false
}

func maps2(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// literalVars returns the variables given a value that expands nothing.
func literalVars(n *yaml.Node) map[string]bool {
	out := map[string]bool{}
	pairs(n, func(k, v *yaml.Node) {
		if v == nil {
			return
		}
		if v.Kind == yaml.MappingNode {
			v = get(v, "value")
		}
		if s, ok := scalar(v); ok && !strings.Contains(s, "$") {
			out[k.Value] = true
		}
	})
	return out
}

// gitlabIncludes returns the local include patterns of an include: value.
func gitlabIncludes(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	var out []string
	add := func(it *yaml.Node) {
		if s, ok := scalar(it); ok {
			if !strings.Contains(s, "://") {
				out = append(out, s)
			}
			return
		}
		if s, ok := scalar(get(it, "local")); ok {
			out = append(out, s)
		}
	}
	if n.Kind == yaml.SequenceNode {
		for _, it := range items(n) {
			add(it)
		}
	} else {
		add(n)
	}
	return out
}

var reIncludeVar = regexp.MustCompile(`\$`)

// resolveInclude returns the files a local include names, relative to root
// (the directory of the top .gitlab-ci.yml). It refuses paths that leave
// root, and include paths that use variables.
func resolveInclude(root, inc string) ([]string, error) {
	if reIncludeVar.MatchString(inc) {
		return nil, fmt.Errorf("%w: include %q uses a variable: it is not followed", ErrParse, inc)
	}
	if strings.Contains(inc, "**") {
		return nil, fmt.Errorf("%w: include %q: ** is not supported", ErrParse, inc)
	}
	rel := filepath.FromSlash(strings.TrimPrefix(inc, "/"))
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%w: include %q leaves the project", ErrParse, inc)
	}
	pattern := filepath.Join(root, rel)
	if !strings.ContainsAny(rel, "*?[") {
		return []string{pattern}, nil
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: include %q: %w", ErrParse, inc, err)
	}
	slices.Sort(matches)
	return matches, nil
}
