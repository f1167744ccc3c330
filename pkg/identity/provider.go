package identity

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Provider types of the issuance configuration (ProviderConfig.Type).
const (
	ProviderGitHub     = "github"
	ProviderGitLab     = "gitlab"
	ProviderKubernetes = "kubernetes"
	ProviderOIDC       = "oidc"
)

// CIClaim is the namespaced WIT claim carrying the CI token's facts
// (design §2.4), immutable ids included.
const CIClaim = "https://trustfabric.dev/ci"

// kind is a provider's table: required claims, claims copied into the WIT,
// fixed-depth claims, the default identifier template, and the derivations and
// default refusals that need code.
type kind struct {
	required []string
	carried  []string
	depth    map[string]int
	template string
	// derive adds derived claims and checks consistency.
	derive func(c map[string]string, p *ProviderConfig) error
	// refuse applies the provider's default refusals.
	refuse func(c map[string]string, p *ProviderConfig) error
	// jtiRequired: the platform always sends a jti, so a token without one
	// is refused (it could not be held to a single exchange).
	jtiRequired bool
}

var kinds = map[string]kind{
	ProviderGitHub: {
		required: []string{"repository", "repository_id", "repository_owner", "repository_owner_id", "ref", "sha",
			"workflow_ref", "job_workflow_ref", "event_name", "run_id", "run_attempt"},
		carried: []string{"repository", "repository_id", "repository_owner", "repository_owner_id", "repository_visibility",
			"workflow_ref", "workflow_sha", "job_workflow_ref", "job_workflow_sha", "ref", "ref_type", "sha", "run_id",
			"run_number", "run_attempt", "event_name", "runner_environment", "environment", "actor", "actor_id", "sub"},
		depth:       map[string]int{"workflow_path": 3, "repository": 2},
		template:    "spiffe://{trustDomain}/github/{repository}/{workflow_path}/{ref}",
		derive:      deriveGitHub,
		jtiRequired: true,
		refuse: func(c map[string]string, p *ProviderConfig) error {
			if c["event_name"] == "pull_request_target" && !p.AllowPullRequestTargetUnsafe {
				return fmt.Errorf("%w: pull_request_target runs carry the base repository's identity for a fork's change (set allowPullRequestTargetUnsafe to permit)", ErrPolicy)
			}
			return nil
		},
	},
	ProviderGitLab: {
		required: []string{"project_id", "project_path", "namespace_id", "namespace_path", "ref", "ref_type", "pipeline_source", "sha"},
		carried: []string{"project_id", "project_path", "namespace_id", "namespace_path", "job_project_id", "job_project_path",
			"job_namespace_id", "job_namespace_path", "ref", "ref_type", "ref_path", "ref_protected", "sha", "pipeline_id",
			"pipeline_source", "job_id", "ci_config_ref_uri", "ci_config_sha", "runner_id", "runner_environment",
			"environment", "project_visibility", "user_login", "sub"},
		depth:       map[string]int{"host": 1},
		template:    "spiffe://{trustDomain}/gitlab/{host}/{project_path}/{ref:segment}",
		jtiRequired: true,
		derive: func(c map[string]string, p *ProviderConfig) error {
			c["host"] = issuerHost(p.Issuer)
			return nil
		},
		refuse: func(c map[string]string, p *ProviderConfig) error {
			if c["pipeline_source"] != "merge_request_event" || p.AllowForkMergeRequestsUnsafe {
				return nil
			}
			jp, ok := c["job_project_id"]
			switch {
			case !ok:
				return fmt.Errorf("%w: merge-request pipeline without job_project_id: cannot tell a fork's pipeline (set allowForkMergeRequestsUnsafe to permit)", ErrPolicy)
			case jp != c["project_id"]:
				return fmt.Errorf("%w: merge-request pipeline from a fork: project_id names the fork (set allowForkMergeRequestsUnsafe to permit)", ErrPolicy)
			}
			return nil
		},
	},
	ProviderKubernetes: {
		required: []string{"sub", "kubernetes.io.namespace", "kubernetes.io.serviceaccount.name", "kubernetes.io.serviceaccount.uid"},
		carried:  []string{"namespace", "serviceaccount", "serviceaccount_uid", "pod", "pod_uid", "node", "cluster", "sub"},
		depth:    map[string]int{"cluster": 1, "namespace": 1, "serviceaccount": 1, "pod": 1},
		template: "spiffe://{trustDomain}/k8s/{cluster}/ns/{namespace}/sa/{serviceaccount}",
		derive: func(c map[string]string, p *ProviderConfig) error {
			c["namespace"] = c["kubernetes.io.namespace"]
			c["serviceaccount"] = c["kubernetes.io.serviceaccount.name"]
			c["serviceaccount_uid"] = c["kubernetes.io.serviceaccount.uid"]
			for k, v := range map[string]string{"pod": "kubernetes.io.pod.name", "pod_uid": "kubernetes.io.pod.uid", "node": "kubernetes.io.node.name"} {
				if x, ok := c[v]; ok {
					c[k] = x
				}
			}
			c["cluster"] = p.Cluster
			if c["cluster"] == "" {
				c["cluster"] = issuerHost(p.Issuer)
			}
			if want := "system:serviceaccount:" + c["namespace"] + ":" + c["serviceaccount"]; c["sub"] != want {
				return fmt.Errorf("%w: sub %q does not match kubernetes.io (%q)", ErrClaims, c["sub"], want)
			}
			return nil
		},
	},
	ProviderOIDC: {
		required: []string{"sub"},
		carried:  []string{"sub"},
		depth:    map[string]int{"host": 1},
		template: "spiffe://{trustDomain}/oidc/{host}/{sub:segment}",
		derive: func(c map[string]string, p *ProviderConfig) error {
			c["host"] = issuerHost(p.Issuer)
			return nil
		},
	},
}

// deriveGitHub adds repository_name and workflow_path (the path of the
// top-level workflow inside the repository, from workflow_ref).
func deriveGitHub(c map[string]string, _ *ProviderConfig) error {
	owner, name, ok := strings.Cut(c["repository"], "/")
	if !ok || owner != c["repository_owner"] || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%w: repository %q does not match repository_owner", ErrClaims, c["repository"])
	}
	c["repository_name"] = name
	wf, ok := strings.CutPrefix(c["workflow_ref"], c["repository"]+"/")
	if !ok {
		return fmt.Errorf("%w: workflow_ref does not name a workflow of %q", ErrClaims, c["repository"])
	}
	// workflow_ref ends with "@" + the ref, which may itself contain '@'.
	p, ok := strings.CutSuffix(wf, "@"+c["ref"])
	if !ok || p == "" {
		return fmt.Errorf("%w: workflow_ref does not end with @%s", ErrClaims, c["ref"])
	}
	c["workflow_path"] = p
	return nil
}

func issuerHost(iss string) string {
	u, err := url.Parse(iss)
	if err != nil {
		return ""
	}
	return u.Host
}

// flattenClaims turns a JSON claim object into name → string: strings as
// they are, numbers in decimal, booleans as "true"/"false", nested objects as
// dotted names ("kubernetes.io.namespace"); arrays and nulls are left out.
func flattenClaims(raw map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v map[string]any, depth int)
	walk = func(prefix string, v map[string]any, depth int) {
		if depth > 4 {
			return
		}
		for k, x := range v {
			name := prefix + k
			switch t := x.(type) {
			case string:
				out[name] = t
			case json.Number:
				out[name] = t.String()
			case float64:
				out[name] = strconv.FormatFloat(t, 'f', -1, 64)
			case bool:
				out[name] = strconv.FormatBool(t)
			case map[string]any:
				walk(name+".", t, depth+1)
			}
		}
	}
	walk("", raw, 0)
	return out
}

// applyPolicy checks required claims, derives, applies default refusals and
// the allow rules, and returns the claims.
func (p *ProviderConfig) applyPolicy(claims map[string]string) error {
	k := kinds[p.Type]
	for _, r := range k.required {
		if claims[r] == "" {
			return fmt.Errorf("%w: %s", ErrClaims, r)
		}
	}
	if k.derive != nil {
		if err := k.derive(claims, p); err != nil {
			return err
		}
	}
	if k.refuse != nil {
		if err := k.refuse(claims, p); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(p.Allow))
	for n := range p.Allow {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v, ok := claims[n]
		if !ok {
			return fmt.Errorf("%w: allow.%s: the token has no such claim", ErrPolicy, n)
		}
		if !slices.ContainsFunc(p.Allow[n], func(pat string) bool {
			m, _ := path.Match(pat, v)
			return m || pat == v
		}) {
			return fmt.Errorf("%w: %s %q is not allowed", ErrPolicy, n, v)
		}
	}
	return nil
}

// carriedClaims returns the namespaced CI claim object of the WIT.
func (p *ProviderConfig) carriedClaims(claims map[string]string) map[string]string {
	out := map[string]string{"provider": p.Type, "issuer": p.Issuer}
	for _, n := range kinds[p.Type].carried {
		if v, ok := claims[n]; ok && v != "" {
			out[n] = v
		}
	}
	return out
}
