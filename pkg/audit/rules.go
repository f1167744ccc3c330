package audit

import (
	"fmt"
	"regexp"
	"strings"
)

// Severity ranks findings. Its levels are SARIF's.
type Severity int

// Severities, lowest first.
const (
	SeverityNone    Severity = iota // no finding has it; --fail-on none never fails
	SeverityNote                    // worth knowing, or accepted
	SeverityWarning                 // a risk to remove
	SeverityError                   // a credential or code path an attacker can use
)

func (s Severity) String() string {
	switch s {
	case SeverityNote:
		return "note"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return "none"
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ParseSeverity parses none, note, warning or error.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(s) {
	case "none":
		return SeverityNone, nil
	case "note":
		return SeverityNote, nil
	case "warning":
		return SeverityWarning, nil
	case "error":
		return SeverityError, nil
	}
	return SeverityNone, fmt.Errorf("severity %q: want none, note, warning or error", s)
}

// Rule describes one check.
type Rule struct {
	ID       string
	Severity Severity
	Title    string
	// Fix is the migration, in Markdown.
	Fix string
}

// Rule ids.
const (
	RuleRegistryPassword = "registry-password"
	RuleCloudCredentials = "cloud-static-credentials"
	RuleSigningKey       = "signing-key-secret"
	RuleLongLivedToken   = "long-lived-token"
	RuleTektonDockerCfg  = "tekton-secret-docker-config"
	RuleHardcodedSecret  = "hardcoded-secret"
	RuleMissingOIDC      = "oidc-not-used"
	RuleWriteAll         = "permissions-write-all"
	RuleMissingPerms     = "permissions-missing"
	RulePRTargetCheckout = "pull-request-target-checkout"
	RuleUnpinnedAction   = "unpinned-action"
	RuleScriptInjection  = "script-injection"
)

const identityFix = "Sign with the job's workload identity instead of a stored key:\n\n" +
	"```yaml\n" +
	"# GitHub: permissions: id-token: write\n" +
	"- uses: trustfabric/trustfabric/actions/identity@v1\n" +
	"  with: {identity-server: https://identity.example.org}\n" +
	"# GitLab: id_tokens: {TRUSTFABRIC_ID_TOKEN: {aud: https://identity.example.org}}\n" +
	"#   script: trustfabric identity --identity-server https://identity.example.org --provider gitlab\n" +
	"```\n"

const cloudFix = "Use the cloud's OIDC federation with the job's ID token (no stored key):\n\n" +
	"```yaml\n" +
	"permissions: {id-token: write, contents: read}\n" +
	"- uses: aws-actions/configure-aws-credentials@<sha>   # AWS\n" +
	"  with: {role-to-assume: arn:aws:iam::123456789012:role/ci, aws-region: eu-west-1}\n" +
	"- uses: google-github-actions/auth@<sha>              # Google Cloud\n" +
	"  with: {workload_identity_provider: projects/N/locations/global/workloadIdentityPools/ci/providers/github, service_account: ci@p.iam.gserviceaccount.com}\n" +
	"- uses: azure/login@<sha>                             # Azure\n" +
	"  with: {client-id: ..., tenant-id: ..., subscription-id: ...}\n" +
	"# GitLab: id_tokens: {AWS_ID_TOKEN: {aud: sts.amazonaws.com}} then\n" +
	"#   aws sts assume-role-with-web-identity --web-identity-token \"$AWS_ID_TOKEN\" ...\n" +
	"```\n"

const registryFix = "Log in with a credential the job is issued, not a stored password:\n\n" +
	"```yaml\n" +
	"# ghcr.io: the job's own token, scoped by permissions: {packages: write}\n" +
	"- uses: docker/login-action@<sha>\n" +
	"  with: {registry: ghcr.io, username: \"${{ github.actor }}\", password: \"${{ secrets.GITHUB_TOKEN }}\"}\n" +
	"# ECR / Artifact Registry / ACR: OIDC federation (aws-actions/configure-aws-credentials with role-to-assume,\n" +
	"#   google-github-actions/auth with workload_identity_provider), then the cloud's registry login\n" +
	"# GitLab registry: docker login -u \"$CI_REGISTRY_USER\" --password-stdin \"$CI_REGISTRY\" <<<\"$CI_REGISTRY_PASSWORD\"\n" +
	"```\n\nThen prove who pushed with `trustfabric attest` under the job's workload identity, not a signing key.\n"

// rules is the catalogue, in the order of SARIF's rules array.
var rules = []Rule{
	{RuleRegistryPassword, SeverityError, "Registry login with a long-lived password", registryFix},
	{RuleCloudCredentials, SeverityError, "Static cloud credentials", cloudFix},
	{RuleSigningKey, SeverityError, "Signing key kept as a CI secret", identityFix},
	{RuleLongLivedToken, SeverityWarning, "Long-lived token passed to a job",
		"Prefer a token the platform issues per job (GITHUB_TOKEN, CI_JOB_TOKEN) or an OIDC exchange: " +
			"npm and PyPI trusted publishing, cloud OIDC federation, or `trustfabric identity` for signing.\n\n" + identityFix},
	{RuleTektonDockerCfg, SeverityWarning, "Registry credentials mounted from a Kubernetes secret",
		"Give the TaskRun's service account registry access through the cluster's workload identity " +
			"(GKE Workload Identity, EKS Pod Identity/IRSA, AKS workload identity) and sign with " +
			"`trustfabric identity --provider kubernetes` (a projected service account token) instead of a key.\n"},
	{RuleHardcodedSecret, SeverityError, "Secret written in the file",
		"Revoke the secret now (it is in the repository's history), then remove it and replace it with an " +
			"OIDC exchange (see the other rules' fixes) or, at worst, a CI secret.\n"},
	{RuleMissingOIDC, SeverityWarning, "Job uses a long-lived credential where OIDC is available",
		"Give the job an ID token and exchange it: GitHub `permissions: {id-token: write}`, GitLab " +
			"`id_tokens: {NAME: {aud: ...}}`; then remove the stored secret.\n\n" + identityFix},
	{RuleWriteAll, SeverityWarning, "permissions: write-all",
		"List only the scopes the job needs, e.g. `permissions: {contents: read, packages: write, id-token: write}`.\n"},
	{RuleMissingPerms, SeverityWarning, "No top-level permissions",
		"Add `permissions: {contents: read}` at the top of the workflow and grant more per job.\n"},
	{RulePRTargetCheckout, SeverityError, "pull_request_target checks out the pull request's code",
		"Build untrusted code under `pull_request` (no secrets, read-only token); keep `pull_request_target` " +
			"for jobs that never check out or run the pull request's head.\n"},
	{RuleUnpinnedAction, SeverityWarning, "Action not pinned by commit SHA",
		"Pin by full commit SHA and keep the tag as a comment: `uses: owner/repo@<40-hex sha> # vX.Y.Z`.\n"},
	{RuleScriptInjection, SeverityError, "Attacker-controlled expression in a script",
		"Pass the value through an environment variable and quote it: " +
			"`env: {TITLE: \"${{ github.event.pull_request.title }}\"}` then `run: echo \"$TITLE\"`.\n"},
}

// Rules returns the catalogue of rules.
func Rules() []Rule { return append([]Rule(nil), rules...) }

func ruleByID(id string) Rule {
	for _, r := range rules {
		if r.ID == id {
			return r
		}
	}
	panic("audit: unknown rule " + id)
}

// collector gathers the findings of one file.
type collector struct {
	file     string
	lines    []string
	findings []Finding
	// flagged remembers line:rule pairs so a usage found twice (an env var
	// and the script using it) is reported once.
	flagged map[string]bool
}

func (c *collector) add(rule string, line, col int, msg string) *Finding {
	key := fmt.Sprintf("%d:%s:%s", line, rule, msg)
	if c.flagged == nil {
		c.flagged = map[string]bool{}
	}
	if c.flagged[key] {
		return nil
	}
	c.flagged[key] = true
	r := ruleByID(rule)
	c.findings = append(c.findings, Finding{
		Rule: rule, Severity: r.Severity, Original: r.Severity,
		File: c.file, Line: line, Column: col, Message: msg, Fix: r.Fix,
	})
	return &c.findings[len(c.findings)-1]
}

func splitLines(data []byte) []string {
	return strings.Split(string(data), "\n")
}

var reAccept = regexp.MustCompile(`trustfabric-audit:\s*accept\s+([a-z0-9,-]+)\s*(.*)`)

// applyAcceptance lowers the findings accepted in a comment on their line or
// the line above to notes.
func (c *collector) applyAcceptance() {
	for i := range c.findings {
		f := &c.findings[i]
		for _, ln := range []int{f.Line, f.Line - 1} {
			if ln < 1 || ln > len(c.lines) {
				continue
			}
			m := reAccept.FindStringSubmatch(c.lines[ln-1])
			if m == nil || !slicesContains(strings.Split(m[1], ","), f.Rule) {
				continue
			}
			reason := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(m[2]), ":-"))
			if reason == "" {
				reason = "accepted"
			}
			f.Accepted = reason
			f.Severity = SeverityNote
			break
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}
