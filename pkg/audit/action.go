package audit

import (
	"fmt"
	"strings"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"
)

// GitHub composite actions (action.yml). actionlint reads their metadata
// without positions, so this file walks yaml nodes instead.

func scanAction(c *collector, data []byte, o options) error {
	docs, err := decodeAll(data)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return nil
	}
	runs := get(docs[0], "runs")
	if runs == nil {
		return fmt.Errorf("%w: an action has no runs", ErrParse)
	}
	p := githubPlatform{}
	var u usage
	if img, ok := scalar(get(runs, "image")); ok && strings.HasPrefix(img, "docker://") {
		n := get(runs, "image")
		checkUses(c, &actionlint.String{Value: img, Pos: &actionlint.Pos{Line: n.Line, Col: n.Column}}, o)
	}
	for _, s := range items(get(runs, "steps")) {
		st := &step{env: yamlEnv(p, get(s, "env")), own: map[string]bool{}}
		for k := range st.env {
			st.own[k] = true
		}
		if r := get(s, "run"); r != nil {
			t := nodeText(r)
			st.run = &t
		}
		if u := get(s, "uses"); u != nil {
			t := nodeText(u)
			st.uses = &t
			st.with = map[string]text{}
			pairs(get(s, "with"), func(k, v *yaml.Node) {
				if v != nil && v.Kind == yaml.ScalarNode {
					st.with[strings.ToLower(k.Value)] = nodeText(v)
				}
			})
		}
		checkStep(c, p, st, &u)
		if st.run != nil {
			checkInjection(c, *st.run)
		}
		if st.uses != nil {
			checkUses(c, &actionlint.String{Value: st.uses.s, Pos: &actionlint.Pos{Line: st.uses.line, Col: st.uses.col}}, o)
			if sc, ok := st.with["script"]; ok && strings.HasPrefix(actionName(st.uses.s), "actions/github-script") {
				checkInjection(c, sc)
			}
		}
	}
	return nil
}

// yamlEnv reads an env mapping of scalars.
func yamlEnv(p platform, n *yaml.Node) map[string]envVar {
	out := map[string]envVar{}
	pairs(n, func(k, v *yaml.Node) {
		if v == nil || v.Kind != yaml.ScalarNode {
			return
		}
		ev := envVar{value: nodeText(v)}
		if refs := p.secretRefs(v.Value); len(refs) > 0 {
			ev.secret = refs[0]
		}
		out[k.Value] = ev
	})
	return out
}
