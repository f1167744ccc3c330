package audit

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Tekton: Task, ClusterTask, StepAction, Pipeline, PipelineRun, TaskRun.
// Credentials reach a step as env vars from secretKeyRef, or as files from a
// secret bound to a workspace or mounted as a volume.

type tektonPlatform struct{}

// secretRefs: a Tekton script names no stored secret directly; it reads env
// vars (see tektonEnv) or files.
func (tektonPlatform) secretRefs(string) []string { return nil }

var reDockerish = regexp.MustCompile(`(?i)docker|registry|regcred|dockercfg|oci-|image-push|push-secret|quay|ghcr|harbor`)

func scanTekton(c *collector, data []byte) error {
	docs, err := decodeAll(data)
	if err != nil {
		return err
	}
	for _, doc := range docs {
		api, _ := scalar(get(doc, "apiVersion"))
		if !strings.HasPrefix(api, "tekton.dev/") {
			continue
		}
		kind, _ := scalar(get(doc, "kind"))
		spec := get(doc, "spec")
		switch kind {
		case "Task", "ClusterTask":
			tektonTask(c, spec)
		case "StepAction":
			tektonSteps(c, []*yaml.Node{spec}, nil)
		case "Pipeline":
			tektonPipeline(c, spec)
		case "PipelineRun":
			tektonBindings(c, get(spec, "workspaces"))
			tektonPipeline(c, get(spec, "pipelineSpec"))
		case "TaskRun":
			tektonBindings(c, get(spec, "workspaces"))
			tektonTask(c, get(spec, "taskSpec"))
		}
	}
	return nil
}

func tektonPipeline(c *collector, spec *yaml.Node) {
	for _, key := range []string{"tasks", "finally"} {
		for _, t := range items(get(spec, key)) {
			ts := get(t, "taskSpec")
			if inner := get(ts, "spec"); inner != nil && get(ts, "steps") == nil {
				ts = inner
			}
			tektonTask(c, ts)
		}
	}
}

func tektonTask(c *collector, spec *yaml.Node) {
	if spec == nil {
		return
	}
	tektonVolumes(c, get(spec, "volumes"))
	template := tektonEnv(c, get(get(spec, "stepTemplate"), "env"))
	var u usage
	checkEnv(c, tektonPlatform{}, template, nil, &u)
	tektonSteps(c, items(get(spec, "steps")), template)
	tektonSteps(c, items(get(spec, "sidecars")), template)
}

func tektonSteps(c *collector, steps []*yaml.Node, template map[string]envVar) {
	p := tektonPlatform{}
	for _, s := range steps {
		own := tektonEnv(c, get(s, "env"))
		st := &step{env: merge(template, own), own: map[string]bool{}}
		for k := range own {
			st.own[k] = true
		}
		var u usage
		if sc := get(s, "script"); sc != nil && sc.Kind == yaml.ScalarNode {
			t := nodeText(sc)
			st.run = &t
			checkStep(c, p, st, &u)
		} else {
			checkEnv(c, p, st.env, st.own, &u)
		}
		// command and args are scripts too (e.g. [sh, -c, "..."]).
		for _, key := range []string{"command", "args"} {
			for _, a := range items(get(s, key)) {
				if a.Kind == yaml.ScalarNode {
					t := nodeText(a)
					checkStep(c, p, &step{run: &t, env: st.env, own: map[string]bool{}}, &u)
				}
			}
		}
	}
}

// tektonEnv reads a list of env vars; those from secretKeyRef carry the
// secret's name and key.
func tektonEnv(c *collector, n *yaml.Node) map[string]envVar {
	out := map[string]envVar{}
	for _, e := range items(n) {
		nameNode := get(e, "name")
		name, ok := scalar(nameNode)
		if !ok {
			continue
		}
		ref := get(get(e, "valueFrom"), "secretKeyRef")
		if ref == nil {
			if v := get(e, "value"); v != nil {
				out[name] = envVar{value: nodeText(v)}
				// The secret scanner reads key: value lines; here the
				// secret-looking name is on the line above the value.
				if v.Kind == yaml.ScalarNode && classifyName(name) != "" && looksLikeSecret(v.Value) {
					c.addSecret(v.Line, v.Column, "high-entropy value of "+name, v.Value)
				}
			}
			continue
		}
		sn, _ := scalar(get(ref, "name"))
		sk, _ := scalar(get(ref, "key"))
		secret := sn + "/" + sk
		out[name] = envVar{value: text{s: secret, line: nameNode.Line, col: nameNode.Column}, secret: secret}
	}
	return out
}

// tektonBindings reports workspaces bound to a Kubernetes secret.
func tektonBindings(c *collector, n *yaml.Node) {
	for _, w := range items(n) {
		name, _ := scalar(get(w, "name"))
		sec := get(w, "secret")
		if sec == nil {
			continue
		}
		sn := get(sec, "secretName")
		secretName, _ := scalar(sn)
		at := sec
		if sn != nil {
			at = sn
		}
		tektonSecretMount(c, at, "workspace "+name, secretName)
	}
}

func tektonVolumes(c *collector, n *yaml.Node) {
	for _, v := range items(n) {
		name, _ := scalar(get(v, "name"))
		sec := get(v, "secret")
		if sec == nil {
			continue
		}
		sn := get(sec, "secretName")
		secretName, _ := scalar(sn)
		at := sec
		if sn != nil {
			at = sn
		}
		tektonSecretMount(c, at, "volume "+name, secretName)
	}
}

func tektonSecretMount(c *collector, at *yaml.Node, what, secretName string) {
	if reDockerish.MatchString(what) || reDockerish.MatchString(secretName) {
		c.add(RuleTektonDockerCfg, at.Line, at.Column, what+" mounts registry credentials from the Kubernetes secret "+secretName)
		return
	}
	c.add(RuleLongLivedToken, at.Line, at.Column, what+" mounts the Kubernetes secret "+secretName)
}
