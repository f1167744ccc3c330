package audit

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/rhysd/actionlint"
)

// GitHub Actions workflows, parsed with actionlint (which keeps positions).

type githubPlatform struct{}

var reSecretsCtx = regexp.MustCompile(`\bsecrets\s*(?:\.\s*([A-Za-z0-9_-]+)|\[\s*['"]([^'"]+)['"]\s*\])`)

// secretRefs returns the stored secrets named in expressions, except
// GITHUB_TOKEN, which the platform issues for each job.
func (githubPlatform) secretRefs(s string) []string {
	if !strings.Contains(s, "secrets") {
		return nil
	}
	var out []string
	for _, m := range reSecretsCtx.FindAllStringSubmatch(s, -1) {
		name := m[1] + m[2]
		if strings.EqualFold(name, "GITHUB_TOKEN") {
			continue
		}
		out = append(out, name)
	}
	return out
}

func scanWorkflow(c *collector, data []byte, o options) error {
	wf, errs := actionlint.Parse(data)
	if wf == nil {
		if len(errs) > 0 {
			return fmt.Errorf("%w: line %d: %s", ErrParse, errs[0].Line, errs[0].Message)
		}
		return fmt.Errorf("%w: not a workflow", ErrParse)
	}
	p := githubPlatform{}
	var wfEnv map[string]envVar
	var none usage
	if wf.Env != nil {
		wfEnv = githubEnv(c, p, wf.Env)
		checkEnv(c, p, wfEnv, nil, &none)
	}
	prTarget := false
	for _, ev := range wf.On {
		if we, ok := ev.(*actionlint.WebhookEvent); ok && (we.Hook.Value == "pull_request_target" || we.Hook.Value == "workflow_run") {
			prTarget = true
		}
	}
	// Permissions.
	if wf.Permissions != nil && wf.Permissions.All != nil && wf.Permissions.All.Value == "write-all" {
		c.add(RuleWriteAll, wf.Permissions.All.Pos.Line, wf.Permissions.All.Pos.Col, "the workflow grants every scope write access")
	}
	if wf.Permissions == nil {
		var missing []string
		for id, j := range wf.Jobs {
			if j.Permissions == nil {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			c.add(RuleMissingPerms, 1, 1, "no top-level permissions, and jobs "+strings.Join(missing, ", ")+
				" set none: they get the repository's default token permissions")
		}
	}
	ids := make([]string, 0, len(wf.Jobs))
	for id := range wf.Jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		j := wf.Jobs[id]
		var u usage
		jobPerms := wf.Permissions
		if j.Permissions != nil {
			jobPerms = j.Permissions
			if j.Permissions.All != nil && j.Permissions.All.Value == "write-all" {
				c.add(RuleWriteAll, j.Permissions.All.Pos.Line, j.Permissions.All.Pos.Col, "job "+id+" grants every scope write access")
			}
		}
		env := wfEnv
		if j.Env != nil {
			jobEnv := githubEnv(c, p, j.Env)
			checkEnv(c, p, jobEnv, nil, &u)
			env = merge(env, jobEnv)
		}
		if j.WorkflowCall != nil {
			checkUses(c, j.WorkflowCall.Uses, o)
			for name, s := range j.WorkflowCall.Secrets {
				if s.Value == nil {
					continue
				}
				if refs := p.secretRefs(s.Value.Value); len(refs) > 0 {
					if rule := classifyName(name); rule != "" && rule != RuleLongLivedToken {
						u.note(rule)
						c.add(rule, s.Value.Pos.Line, s.Value.Pos.Col, credMessage(rule, "secret "+name+" passed to "+j.WorkflowCall.Uses.Value, refs[0]))
					}
				}
			}
		}
		checkedOutPR := 0
		for _, s := range j.Steps {
			st := githubStep(c, p, s, env)
			checkStep(c, p, st, &u)
			if st.run != nil {
				checkInjection(c, *st.run)
			}
			if st.uses != nil {
				checkUses(c, &actionlint.String{Value: st.uses.s, Pos: &actionlint.Pos{Line: st.uses.line, Col: st.uses.col}}, o)
				if strings.HasPrefix(actionName(st.uses.s), "actions/github-script") {
					if sc, ok := st.with["script"]; ok {
						checkInjection(c, sc)
					}
				}
			}
			if prTarget {
				if checkedOutPR == 0 && st.uses != nil && strings.HasPrefix(actionName(st.uses.s), "actions/checkout") && checksOutHead(st.with["ref"].s) {
					checkedOutPR = st.uses.line
				} else if checkedOutPR > 0 && (st.run != nil || st.uses != nil && strings.HasPrefix(st.uses.s, "./")) {
					c.add(RulePRTargetCheckout, checkedOutPR, 0, "job "+id+" checks out the pull request's head under pull_request_target and then runs it (line "+fmt.Sprint(stepLine(st))+")")
					checkedOutPR = -1
				}
			}
		}
		if checkedOutPR > 0 {
			c.add(RulePRTargetCheckout, checkedOutPR, 0, "job "+id+" checks out the pull request's head under pull_request_target with the base repository's token and secrets")
		}
		if u.oidcCapable && !hasIDTokenWrite(jobPerms) && j.WorkflowCall == nil {
			c.add(RuleMissingOIDC, j.ID.Pos.Line, j.ID.Pos.Col, "job "+id+" uses long-lived credentials and has no id-token: write to replace them with OIDC")
		}
	}
	return nil
}

func stepLine(st *step) int {
	if st.run != nil {
		return st.run.line
	}
	return st.uses.line
}

var reHeadRef = regexp.MustCompile(`github\.event\.(pull_request|workflow_run)\.head|github\.head_ref|refs/pull/|github\.event\.number`)

func checksOutHead(ref string) bool { return reHeadRef.MatchString(ref) }

func hasIDTokenWrite(p *actionlint.Permissions) bool {
	if p == nil {
		return false
	}
	if p.All != nil {
		return p.All.Value == "write-all"
	}
	s, ok := p.Scopes["id-token"]
	return ok && s.Value != nil && s.Value.Value == "write"
}

func merge(a, b map[string]envVar) map[string]envVar {
	out := make(map[string]envVar, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func githubEnv(c *collector, p platform, e *actionlint.Env) map[string]envVar {
	out := map[string]envVar{}
	for _, v := range e.Vars {
		if v.Name == nil || v.Value == nil {
			continue
		}
		t := stringText(c, v.Value)
		ev := envVar{value: t}
		if refs := p.secretRefs(t.s); len(refs) > 0 {
			ev.secret = refs[0]
		}
		out[v.Name.Value] = ev
	}
	return out
}

func stringText(c *collector, s *actionlint.String) text {
	t := text{s: s.Value}
	if s.Pos != nil {
		t.line, t.col = s.Pos.Line, s.Pos.Col
		t.block = blockAt(c.lines, t.line, t.col)
	}
	return t
}

// blockAt reports whether the scalar at line:col is a block scalar.
func blockAt(lines []string, line, col int) bool {
	if line < 1 || line > len(lines) || col < 1 || col > len(lines[line-1]) {
		return false
	}
	ch := lines[line-1][col-1]
	return ch == '|' || ch == '>'
}

func githubStep(c *collector, p platform, s *actionlint.Step, inherited map[string]envVar) *step {
	st := &step{env: inherited}
	if s.Env != nil {
		own := githubEnv(c, p, s.Env)
		st.own = map[string]bool{}
		for k := range own {
			st.own[k] = true
		}
		st.env = merge(inherited, own)
	} else {
		st.own = map[string]bool{}
	}
	switch e := s.Exec.(type) {
	case *actionlint.ExecRun:
		if e.Run != nil {
			t := stringText(c, e.Run)
			st.run = &t
		}
	case *actionlint.ExecAction:
		if e.Uses != nil {
			t := stringText(c, e.Uses)
			st.uses = &t
			st.with = map[string]text{}
			for k, in := range e.Inputs {
				if in.Value != nil {
					st.with[k] = stringText(c, in.Value)
				}
			}
		}
	}
	return st
}

var reFullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// checkUses reports an action or reusable workflow not pinned by full SHA.
func checkUses(c *collector, uses *actionlint.String, o options) {
	if uses == nil {
		return
	}
	v := strings.TrimSpace(uses.Value)
	if strings.HasPrefix(v, "./") || strings.Contains(v, "${{") {
		return
	}
	line, col := 0, 0
	if uses.Pos != nil {
		line, col = uses.Pos.Line, uses.Pos.Col
	}
	if img, ok := strings.CutPrefix(v, "docker://"); ok {
		if !strings.Contains(img, "@sha256:") {
			c.add(RuleUnpinnedAction, line, col, "container action "+v+" is not pinned by digest")
		}
		return
	}
	name, ref, ok := strings.Cut(v, "@")
	if ok && reFullSHA.MatchString(ref) {
		return
	}
	f := c.add(RuleUnpinnedAction, line, col, name+" is used at "+refOrNone(ref)+", which can be moved to other code")
	if f != nil && refPinAllowed(name, o.refPinOwners) {
		f.Severity = SeverityNote
	}
}

func refOrNone(ref string) string {
	if ref == "" {
		return "no ref"
	}
	return "@" + ref
}

func refPinAllowed(name string, owners []string) bool {
	name = strings.ToLower(name)
	for _, o := range owners {
		if strings.Contains(o, "/") {
			if name == o || strings.HasPrefix(name, o+"/") {
				return true
			}
		} else if strings.HasPrefix(name, o+"/") {
			return true
		}
	}
	return false
}

var (
	reExpr = regexp.MustCompile(`\$\{\{(.*?)\}\}`)
	// reUntrusted matches contexts an outsider can set.
	reUntrusted = regexp.MustCompile(`\bgithub\s*\.\s*(event(?:\s*\.\s*[A-Za-z0-9_*-]+|\s*\[[^\]]*\])+|head_ref)`)
	// reSafeTail matches fields that are numbers, ids, hashes or enums.
	reSafeTail = regexp.MustCompile(`(?i)(^|\.)(number|id|[a-z_]*_id|sha|[a-z_]*_sha|size|count|[a-z_]*_count|draft|merged|state|action|created_at|updated_at|forced|deleted|private|fork)$`)
)

// checkInjection reports ${{ }} expressions in a script that expand values
// an outsider controls (titles, bodies, branch names, commit messages):
// they are pasted into the script before the shell parses it.
func checkInjection(c *collector, t text) {
	if !strings.Contains(t.s, "${{") {
		return
	}
	for i, ln := range strings.Split(t.s, "\n") {
		for _, m := range reExpr.FindAllStringSubmatch(ln, -1) {
			for _, u := range reUntrusted.FindAllStringSubmatch(m[1], -1) {
				ctx := strings.Join(strings.Fields(u[0]), "")
				if reSafeTail.MatchString(ctx) {
					continue
				}
				c.add(RuleScriptInjection, t.lineOf(i), 0, ctx+" is expanded into the script; an outsider controls its value")
			}
		}
	}
}
