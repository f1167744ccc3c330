// Package quickstart runs Trustfabric's whole flow on embedded defaults, in
// process and on loopback only, and shows the deployment gate allowing what
// is proven and refusing, for the right reason, what is not. It is what
// `trustfabric quickstart` runs, and an end-to-end test of the project.
//
// Everything is the real component (Identity Server, Transparency Service on
// Tessera's POSIX driver, an olareg registry, the attest flow, the policy
// verifier) except the GitHub OIDC issuer and runner token endpoint, which
// are in-process fakes minting tokens shaped like GitHub's
// (pkg/identity/oidctest).
package quickstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// Options configure Run.
type Options struct {
	// Dir is the workspace. Empty: a temporary directory removed at the end.
	Dir string
	// Out receives the story. Default os.Stdout.
	Out io.Writer
	// Serve keeps the services running after the flow, until ctx is done,
	// and writes Dir/env.sh (EnvFile) describing them while they run; it
	// needs Dir. Run then returns nil when ctx ends (an interrupt is the
	// normal way out).
	Serve bool
}

// EnvFile is the file Run writes in Dir while it serves: shell lines
// exporting TF_REGISTRY (host:port), TF_TS_URL, TF_IDENTITY_SERVER,
// TF_IMAGE (the attested image by digest), TF_IMAGE_TAG (the same by tag),
// TF_UNATTESTED_IMAGE (by digest), TF_POLICY (the policy file) and
// TF_GITHUB_ISSUER (the fake CI issuer). It is removed when Run stops
// serving, so its presence means the services are up.
const EnvFile = "env.sh"

// CIEnvFile, next to EnvFile, exports the fake GitHub Actions runner's
// variables (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, GITHUB_*), so that
// `trustfabric attest` run in a shell that sources it gets a CI token from
// the fake issuer.
const CIEnvFile = "ci-env.sh"

// Expectation is one thing the quickstart checks.
type Expectation struct {
	Name string
	// Want is "allow", or the check the gate must deny at.
	Want string
	// Got is "allow" or the check the gate denied at; Reason its reason.
	Got, Reason string
}

// Held reports whether the gate did what was expected.
func (e Expectation) Held() bool { return e.Want == e.Got }

// Report is what Run found.
type Report struct {
	Dir          string
	Image        string
	Attest       *attest.Result
	PolicyFile   string
	Expectations []Expectation
}

// OK reports whether every expectation held.
func (r *Report) OK() bool {
	if len(r.Expectations) == 0 {
		return false
	}
	for _, e := range r.Expectations {
		if !e.Held() {
			return false
		}
	}
	return true
}

// ErrExpectation is returned when the gate did not do what it must.
var ErrExpectation = errors.New("an expectation did not hold")

// Run starts the services, attests an image, verifies it with a policy, and
// runs the four deny cases. It returns a report and ErrExpectation when any
// expectation failed.
func Run(ctx context.Context, o Options) (*Report, error) {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	if o.Serve && o.Dir == "" {
		return nil, errors.New("quickstart: serving needs a workspace directory (--keep DIR) for env.sh")
	}
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trustfabric-quickstart-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &printer{w: out}
	p.line("Trustfabric quickstart: the whole flow on loopback, with nothing installed.")
	if o.Dir == "" {
		p.line("  workspace %s (removed at the end; keep it with --keep DIR)", dir)
	} else {
		p.line("  workspace %s (kept)", dir)
	}

	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "main")})
	if err != nil {
		return nil, fmt.Errorf("start the services: %w", err)
	}
	defer env.Close()
	p.section("1. Services (all real but the GitHub issuer)")
	p.line("  fake GitHub Actions OIDC issuer  %s  (stands in for token.actions.githubusercontent.com)", env.GitHub.URL())
	p.line("  Identity Server                  %s  trust domain %s", env.IdentityURL, servertest.DefaultTrustDomain)
	p.line("  Transparency Service             %s  Tessera POSIX log in %s", env.TSURL, filepath.Join(dir, "main"))
	p.line("  OCI registry (olareg)            %s  image %s", env.RegistryHost, env.Image)

	p.section("2. attest: what the release job runs")
	res, err := attest.Run(ctx, attest.Options{
		Image: env.ImageTag, TS: env.TSURL, IdentityServer: env.IdentityURL, Getenv: env.Getenv,
		StatementOut: filepath.Join(dir, "statement.cose"), Out: io.Discard,
		Progress: func(s attest.Step) { p.line("  %-11s %8s", s.Name, s.Duration.Round(time.Microsecond)) },
	})
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	p.line("  workload    %s", res.WorkloadID)
	p.line("  entry       %s (log index %d, tree size %d)", res.EntryID, res.LogIndex, res.TreeSize)
	p.line("  referrer    %s", res.Referrer)

	policyFile, err := WritePolicy(dir, env)
	if err != nil {
		return nil, err
	}
	report := &Report{Dir: dir, Image: env.Image, Attest: res, PolicyFile: policyFile}
	reg, err := oci.New()
	if err != nil {
		return nil, err
	}
	pol, err := policy.Load(policyFile)
	if err != nil {
		return nil, err
	}
	gate, err := policy.NewVerifier(ctx, pol, policy.WithOCIClient(reg), policy.WithOffline(), policy.WithCacheTTL(0, 0))
	if err != nil {
		return nil, err
	}
	p.section("3. verify: what the deploy job runs (policy " + policyFile + ")")
	e, err := expect(ctx, gate, "the attested image", env.Image, "allow")
	if err != nil {
		return nil, err
	}
	report.Expectations = append(report.Expectations, e)
	p.expectation(e)

	p.section("4. The gate refusing what is not proven")
	for i, c := range DenyCases {
		image, err := c.Prepare(ctx, env, reg, filepath.Join(dir, fmt.Sprintf("case%d", i+1)))
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", c.Name, err)
		}
		e, err := expect(ctx, gate, c.Name, image, c.Check)
		if err != nil {
			return nil, err
		}
		report.Expectations = append(report.Expectations, e)
		p.expectation(e)
	}

	if o.Serve {
		if !report.OK() {
			return report, ErrExpectation
		}
		return report, serve(ctx, p, env, report)
	}
	p.section("5. The same with the real commands (these services stop with quickstart; `trustfabric serve` runs them for real)")
	p.line("  trustfabric attest %s --ts %s --identity-server %s", env.ImageTag, env.TSURL, env.IdentityURL)
	p.line("  trustfabric verify %s --policy %s", env.Image, policyFile)
	p.line("  trustfabric inspect %s", filepath.Join(dir, "statement.cose"))
	if o.Dir != "" {
		p.line("  files: %s (statement.cose, policy.yaml, ts-keys.cbor, wit-bundle.json, the log in main/)", dir)
	}
	held := 0
	for _, e := range report.Expectations {
		if e.Held() {
			held++
		}
	}
	if !report.OK() {
		p.line("\n%d of %d expectations held.", held, len(report.Expectations))
		return report, ErrExpectation
	}
	p.line("\nAll %d expectations held.", len(report.Expectations))
	return report, nil
}

// serve writes env.sh and ci-env.sh, waits for ctx to end, and removes
// them; the deferred env.Close in Run stops the services.
func serve(ctx context.Context, p *printer, env *servertest.Env, report *Report) error {
	unattested, err := servertest.PushRandomImage(ctx, env.RegistryHost+"/acme/unattested:v1")
	if err != nil {
		return fmt.Errorf("push the unattested image: %w", err)
	}
	vars := [][2]string{
		{"TF_REGISTRY", env.RegistryHost},
		{"TF_TS_URL", env.TSURL},
		{"TF_IDENTITY_SERVER", env.IdentityURL},
		{"TF_IMAGE", env.Image},
		{"TF_IMAGE_TAG", env.ImageTag},
		{"TF_UNATTESTED_IMAGE", unattested},
		{"TF_POLICY", report.PolicyFile},
	}
	if env.GitHub != nil {
		vars = append(vars, [2]string{"TF_GITHUB_ISSUER", env.GitHub.URL()})
	}
	envFile, ciFile := filepath.Join(report.Dir, EnvFile), filepath.Join(report.Dir, CIEnvFile)
	ci := make([][2]string, 0, len(env.Vars))
	for k, v := range env.Vars {
		ci = append(ci, [2]string{k, v})
	}
	sort.Slice(ci, func(i, j int) bool { return ci[i][0] < ci[j][0] })
	// ci-env.sh first: env.sh appearing means everything is ready.
	if err := atomicfile.WriteFile(ciFile, exports("the fake GitHub Actions runner of `trustfabric quickstart --serve`", ci), 0o600); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(envFile, exports("the live system of `trustfabric quickstart --serve` (removed when it stops)", vars), 0o644); err != nil {
		return err
	}
	defer os.Remove(ciFile)
	defer os.Remove(envFile)
	p.section("5. Serving until interrupted (Ctrl-C or SIGTERM stops everything)")
	for _, v := range vars {
		p.line("  %-20s %s", v[0], v[1])
	}
	p.line("  . %s    then, for example:", envFile)
	p.line("  trustfabric verify $TF_IMAGE --policy $TF_POLICY")
	p.line("  trustfabric verify $TF_UNATTESTED_IMAGE --policy $TF_POLICY   (denied)")
	p.line("  (. %s first to attest as the fake CI job: trustfabric attest IMAGE --ts $TF_TS_URL --identity-server $TF_IDENTITY_SERVER)", ciFile)
	<-ctx.Done()
	p.line("\nStopping.")
	return nil
}

// exports renders shell export lines, each value single-quoted.
func exports(what string, vars [][2]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", what)
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s='%s'\n", v[0], strings.ReplaceAll(v[1], "'", `'\''`))
	}
	return []byte(b.String())
}

// expect runs the gate on image and compares with want.
func expect(ctx context.Context, gate *policy.Verifier, name, image, want string) (Expectation, error) {
	d, err := gate.Verify(ctx, image)
	if err != nil {
		return Expectation{}, fmt.Errorf("verify %s: %w", image, err)
	}
	e := Expectation{Name: name, Want: want}
	if d.Allowed {
		e.Got = "allow"
		e.Reason = "satisfied by " + d.SatisfiedBy.Referrer
		return e, nil
	}
	if len(d.Candidates) == 0 {
		e.Got, e.Reason = "no evidence", strings.Join(d.Reasons, "; ")
		return e, nil
	}
	ch, _ := d.Candidates[0].Failed()
	e.Got, e.Reason = ch.Name, ch.Reason
	return e, nil
}

// WritePolicy writes dir/policy.yaml (with ts-keys.cbor and wit-bundle.json
// beside it): a policy that trusts the environment's Transparency Service
// and Identity Server, and the repository of its GitHub run.
func WritePolicy(dir string, env *servertest.Env) (string, error) {
	keys, err := keys.MarshalCOSEKeySet(env.TSKeys)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "ts-keys.cbor"), keys, 0o644); err != nil {
		return "", err
	}
	bundle, err := env.Bundle.Marshal()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "wit-bundle.json"), bundle, 0o644); err != nil {
		return "", err
	}
	run := env.GitHub.Run()
	doc := fmt.Sprintf(`# Written by trustfabric quickstart: trust the local services and one repository.
apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: %s
    keys: [ts-keys.cbor]
    leaf: ietf
identities:
  - trustDomain: %s
    bundle: wit-bundle.json
workloads:
  - prefix: spiffe://%s/github/%s/%s
    require:
      repository_id: %q
provenance:
  predicateTypes: [https://slsa.dev/provenance/v1]
  sourceRepositories: ["https://github.com/%s/*"]
  refs: [%s]
  triggers: [push, workflow_dispatch]
`, env.TSURL, servertest.DefaultTrustDomain, servertest.DefaultTrustDomain, run.Owner, run.Repo, run.RepoID, run.Owner, run.Ref)
	path := filepath.Join(dir, "policy.yaml")
	return path, os.WriteFile(path, []byte(doc), 0o644)
}

type printer struct{ w io.Writer }

func (p *printer) line(format string, args ...any) { fmt.Fprintf(p.w, format+"\n", args...) }
func (p *printer) section(title string)            { fmt.Fprintf(p.w, "\n%s\n", title) }
func (p *printer) expectation(e Expectation) {
	mark := "✓"
	if !e.Held() {
		mark = "✗"
	}
	verdict := "allowed"
	if e.Got != "allow" {
		verdict = "denied at " + e.Got
	}
	p.line("  %s %-52s %s", mark, e.Name, verdict)
	if e.Reason != "" {
		p.line("      %s", e.Reason)
	}
	if !e.Held() {
		p.line("      expected: %s", e.Want)
	}
}

// blockWrites is a transport that refuses every registry write, to obtain a
// registered statement that attest could not attach.
type blockWrites struct{}

func (blockWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, errors.New("quickstart: writes are blocked to keep the evidence off the registry")
	}
	return http.DefaultTransport.RoundTrip(r)
}
