package audit

import (
	"regexp"
	"strings"
)

// This file holds the rules shared by every platform: how a step uses a
// stored credential. Each platform's parser turns its steps into a step and
// says, through a platform, which references name a stored secret.

// text is a string from a file and where it starts. block is true for a
// YAML block scalar (| or >), whose content starts on the next line.
type text struct {
	s     string
	line  int
	col   int
	block bool
}

// lineOf returns the file line of the i-th line (0-based) of t.
func (t text) lineOf(i int) int {
	if t.block {
		return t.line + 1 + i
	}
	return t.line + i
}

// envVar is an environment variable a step sees.
type envVar struct {
	value text
	// secret is the stored secret it holds ("" when none).
	secret string
}

// step is one unit of work: a script, or a call of an action with inputs.
type step struct {
	run  *text
	uses *text
	with map[string]text // input names in lower case
	env  map[string]envVar
	// own lists the env var names defined on this step (the others come from
	// the job or the workflow and are checked where they are defined).
	own map[string]bool
}

// platform knows how a platform refers to stored secrets.
type platform interface {
	// secretRefs returns the stored secrets that s refers to directly
	// (`${{ secrets.X }}` on GitHub, `$X` for a project variable on GitLab).
	secretRefs(s string) []string
}

// usage is what a job did with long-lived credentials.
type usage struct {
	// oidcCapable is true when a finding of the job names a credential that
	// an OIDC exchange replaces (registry, cloud, signing).
	oidcCapable bool
}

var (
	reCloudName    = regexp.MustCompile(`(?i)^(AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID)|GOOGLE_(APPLICATION_)?CREDENTIALS(_JSON)?|GCP_(SA_KEY|CREDENTIALS|SERVICE_ACCOUNT_KEY|KEY)|GCLOUD_(SERVICE_)?KEY|AZURE_(CREDENTIALS|CLIENT_SECRET)|ARM_(CLIENT_SECRET|ACCESS_KEY))$`)
	reSigningName  = regexp.MustCompile(`(?i)(COSIGN_(PRIVATE_)?KEY|COSIGN_PASSWORD|(SIGNING|GPG|PGP|GNUPG|NOTATION)_(PRIVATE_)?KEY|GPG_PASSPHRASE|(^|_)PRIVATE_KEY$)`)
	reRegistryName = regexp.MustCompile(`(?i)\.docker(configjson|cfg)$|(DOCKER|REGISTRY|QUAY|HARBOR|GHCR|NEXUS|ARTIFACTORY|JFROG|ACR|ECR)[A-Z_]*(PASSWORD|PASS|TOKEN|PAT|SECRET)`)
	reTokenName    = regexp.MustCompile(`(?i)(TOKEN|(^|_)PAT$|PASSWORD|PASSWD|SECRET|API_?KEY|CREDENTIALS?)`)

	reLogin    = regexp.MustCompile(`\b(docker|podman|buildah|nerdctl|skopeo|oras|helm\s+registry|crane\s+auth)\b.*\blogin\b`)
	rePassFlag = regexp.MustCompile(`(?:^|\s)(?:-p|--password)(?:[=\s]+)(\S+)|--password-stdin`)
	reCosign   = regexp.MustCompile(`\bcosign\b.*\s--key[=\s]+["']?(\S+)`)
	reGPG      = regexp.MustCompile(`\bgpg2?\b.*--import|\bnotation\b.*\bkey\b.*\badd\b`)
	reGcloud   = regexp.MustCompile(`\bgcloud\s+auth\s+activate-service-account\b`)
	reAzLogin  = regexp.MustCompile(`\baz\s+login\b.*--service-principal`)
	reShellVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
)

// classifyName returns the rule for a credential by its name.
func classifyName(name string) string {
	switch {
	case reCloudName.MatchString(name):
		return RuleCloudCredentials
	case reSigningName.MatchString(name):
		return RuleSigningKey
	case reRegistryName.MatchString(name):
		return RuleRegistryPassword
	case reTokenName.MatchString(name):
		return RuleLongLivedToken
	}
	return ""
}

// checkEnv reports environment variables that carry stored credentials, at
// the line they are defined. Called once for each env block.
func checkEnv(c *collector, p platform, env map[string]envVar, names map[string]bool, u *usage) {
	for name, v := range env {
		if names != nil && !names[name] {
			continue
		}
		if v.secret == "" {
			continue
		}
		rule := classifyName(name)
		if r := classifyName(v.secret); rule == "" || rule == RuleLongLivedToken && r != "" {
			rule = r
		}
		if rule == "" {
			continue
		}
		u.note(rule)
		c.add(rule, v.value.line, v.value.col, credMessage(rule, "environment variable "+name, v.secret))
	}
}

func (u *usage) note(rule string) {
	switch rule {
	case RuleCloudCredentials, RuleSigningKey, RuleRegistryPassword, RuleTektonDockerCfg:
		u.oidcCapable = true
	}
}

func credMessage(rule, where, secret string) string {
	what := map[string]string{
		RuleCloudCredentials: "static cloud credentials",
		RuleSigningKey:       "a signing key",
		RuleRegistryPassword: "a registry password",
		RuleLongLivedToken:   "a long-lived token",
	}[rule]
	verb := " holds "
	if where == "the script" {
		verb = " uses "
	}
	return where + verb + what + " from the stored secret " + secret
}

// checkStep applies the usage rules to one step.
func checkStep(c *collector, p platform, st *step, u *usage) {
	checkEnv(c, p, st.env, st.own, u)
	// secretsOf returns the stored secrets a piece of script refers to,
	// directly or through an env var.
	secretsOf := func(s string) []string {
		refs := p.secretRefs(s)
		if !strings.Contains(s, "$") {
			return refs
		}
		for _, m := range reShellVar.FindAllStringSubmatch(s, -1) {
			if v, ok := st.env[m[1]]; ok && v.secret != "" {
				refs = append(refs, v.secret)
			}
		}
		return refs
	}
	if st.run != nil {
		for i, ln := range strings.Split(st.run.s, "\n") {
			line := st.run.lineOf(i)
			checkScriptLine(c, ln, line, secretsOf, u)
		}
	}
	if st.uses != nil {
		checkInputs(c, p, st, u)
	}
}

func checkScriptLine(c *collector, ln string, line int, secretsOf func(string) []string, u *usage) {
	code := ln
	if i := strings.Index(code, " #"); i >= 0 {
		code = code[:i]
	}
	if strings.HasPrefix(strings.TrimSpace(code), "#") {
		return
	}
	refs := secretsOf(code)
	switch {
	case strings.Contains(code, "login") && reLogin.MatchString(code) && rePassFlag.MatchString(code):
		if len(refs) > 0 {
			u.note(RuleRegistryPassword)
			c.add(RuleRegistryPassword, line, 0, "registry login with the stored secret "+refs[0])
		}
	case strings.Contains(code, "cosign") && reCosign.MatchString(code):
		key := reCosign.FindStringSubmatch(code)[1]
		if isKMS(key) {
			return
		}
		u.note(RuleSigningKey)
		msg := "cosign signs with a key kept outside the job's identity (" + keyScheme(key) + ")"
		if len(refs) > 0 {
			msg = "cosign signs with the stored secret " + refs[0]
		}
		c.add(RuleSigningKey, line, 0, msg)
	case len(refs) > 0 && (strings.Contains(code, "gpg") || strings.Contains(code, "notation")) && reGPG.MatchString(code):
		u.note(RuleSigningKey)
		c.add(RuleSigningKey, line, 0, "a signing key is imported from the stored secret "+refs[0])
	case strings.Contains(code, "gcloud") && reGcloud.MatchString(code):
		u.note(RuleCloudCredentials)
		c.add(RuleCloudCredentials, line, 0, "gcloud authenticates with a service account key file")
	case len(refs) > 0 && strings.Contains(code, "az ") && reAzLogin.MatchString(code):
		u.note(RuleCloudCredentials)
		c.add(RuleCloudCredentials, line, 0, "az login uses the service principal secret "+refs[0])
	default:
		for _, r := range refs {
			if rule := classifyName(r); rule == RuleCloudCredentials || rule == RuleSigningKey {
				u.note(rule)
				c.add(rule, line, 0, credMessage(rule, "the script", r))
			}
		}
	}
}

func isKMS(key string) bool {
	for _, p := range []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// keyScheme names where a cosign key comes from without echoing the value.
func keyScheme(key string) string {
	if i := strings.Index(key, "://"); i > 0 {
		return key[:i+3]
	}
	return "a key file"
}

// actionInputs maps an action (owner/repo, lower case) to the inputs that
// take long-lived credentials and the rule each falls under.
var actionInputs = map[string]map[string]string{
	"docker/login-action":                    {"password": RuleRegistryPassword},
	"aws-actions/configure-aws-credentials":  {"aws-secret-access-key": RuleCloudCredentials, "aws-access-key-id": RuleCloudCredentials},
	"google-github-actions/auth":             {"credentials_json": RuleCloudCredentials},
	"google-github-actions/setup-gcloud":     {"service_account_key": RuleCloudCredentials},
	"azure/login":                            {"creds": RuleCloudCredentials},
	"azure/docker-login":                     {"password": RuleRegistryPassword},
	"redhat-actions/podman-login":            {"password": RuleRegistryPassword},
	"sigstore/cosign-installer":              {},
	"crazy-max/ghaction-import-gpg":          {"gpg_private_key": RuleSigningKey, "passphrase": RuleSigningKey},
	"pypa/gh-action-pypi-publish":            {"password": RuleLongLivedToken},
	"trustfabric/trustfabric":                {"registry-password": RuleRegistryPassword},
	"trustfabric/trustfabric/actions/verify": {"registry-password": RuleRegistryPassword},
}

func actionName(uses string) string {
	name, _, _ := strings.Cut(strings.ToLower(uses), "@")
	return name
}

func checkInputs(c *collector, p platform, st *step, u *usage) {
	known := actionInputs[actionName(st.uses.s)]
	for name, v := range st.with {
		refs := p.secretRefs(v.s)
		if len(refs) == 0 {
			continue
		}
		rule, ok := known[name]
		if !ok {
			rule = classifyName(name)
			if r := classifyName(refs[0]); rule == "" || rule == RuleLongLivedToken && r != "" {
				rule = r
			}
		}
		if rule == "" {
			continue
		}
		u.note(rule)
		c.add(rule, v.line, v.col, credMessage(rule, "input "+name+" of "+actionName(st.uses.s), refs[0]))
	}
}
