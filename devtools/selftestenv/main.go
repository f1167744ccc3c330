// Command selftestenv runs, on loopback, the services the CI self-tests
// attest and verify against: the test/dev environment of
// pkg/server/servertest (an Identity Server trusting one CI issuer and a
// Transparency Service on Tessera that trusts its WIT bundle and requires
// WIMSE headers, built by the composition root pkg/server, and an olareg
// registry). The CI issuer is
//
//   - -provider github -issuer URL: a real one (GitHub's, on a GitHub runner);
//   - -provider github: the GitHub fake of pkg/identity/oidctest with its
//     runner token endpoint (for act, offline);
//   - -provider gitlab: the GitLab fake, which mints one ID token for the
//     Identity Server (for gitlab-ci-local, offline).
//
// It writes a verification policy trusting these services and, to -env-file,
// KEY=VALUE lines: TF_SELFTEST_REGISTRY, TF_SELFTEST_TS, TF_SELFTEST_IDS,
// TF_SELFTEST_POLICY, and ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN (GitHub fake) or
// TRUSTFABRIC_ID_TOKEN (GitLab fake). Then it serves until interrupted.
//
// For the isolated attest workflow's self-test (GitHub fake only):
//
//   - -workflow PATH names the caller's workflow file in the fake's tokens
//     (workflow_ref, and job_workflow_ref of the run's own jobs);
//   - -job NAME=JOB_WORKFLOW_REF (repeatable) adds a job whose tokens carry
//     that job_workflow_ref, as a job of a called reusable workflow gets on
//     GitHub; its runner request token is TF_SELFTEST_JOB_<NAME>_REQUEST_TOKEN
//     (use it as that job's ACTIONS_ID_TOKEN_REQUEST_TOKEN);
//   - -require-builder GLOB also writes a policy requiring that builder id
//     (provenance builderIDs), TF_SELFTEST_BUILDER_POLICY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// trustDomain is the authority of the identities the self-tests get.
const trustDomain = "selftest.trustfabric.dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "selftestenv: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	provider, issuer, repository, dir, envFile string
	workflow, requireBuilder                   string
	jobs                                       []job
}

// job is a -job flag: a job of a called reusable workflow.
type job struct{ name, ref string }

func (o *options) addJob(v string) error {
	name, ref, ok := strings.Cut(v, "=")
	if !ok || ref == "" || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return fmt.Errorf("want NAME=OWNER/REPO/PATH@REF with NAME of [a-z0-9_], got %q", v)
	}
	o.jobs = append(o.jobs, job{name: name, ref: ref})
	return nil
}

func run() error {
	var o options
	flag.StringVar(&o.provider, "provider", "github", "CI platform: github or gitlab")
	flag.StringVar(&o.issuer, "issuer", "", "github: trust this real OIDC issuer instead of running the fake")
	flag.StringVar(&o.repository, "repository", "", "github: owner/repo the identity is restricted to (the fake's run by default)")
	flag.StringVar(&o.dir, "dir", "", "data directory (required)")
	flag.StringVar(&o.envFile, "env-file", "", "file to write the variables to (required)")
	flag.StringVar(&o.workflow, "workflow", "", "github fake: the caller's workflow file (default the fake's, .github/workflows/release.yml)")
	flag.Func("job", "github fake: NAME=JOB_WORKFLOW_REF, a job of a called reusable workflow (repeatable)", o.addJob)
	flag.StringVar(&o.requireBuilder, "require-builder", "", "also write a policy requiring this builder id (glob)")
	flag.Parse()
	if o.dir == "" || o.envFile == "" {
		return errors.New("-dir and -env-file are required")
	}
	if (o.workflow != "" || len(o.jobs) > 0) && (o.provider != "github" || o.issuer != "") {
		return errors.New("-workflow and -job need the GitHub fake (-provider github without -issuer)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, closeAll, err := start(ctx, o)
	defer closeAll()
	if err != nil {
		return err
	}
	var b strings.Builder
	names := []string{"TF_SELFTEST_REGISTRY", "TF_SELFTEST_TS", "TF_SELFTEST_IDS", "TF_SELFTEST_POLICY",
		"TF_SELFTEST_BUILDER_POLICY", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "TRUSTFABRIC_ID_TOKEN"}
	for _, j := range o.jobs {
		names = append(names, jobTokenVar(j.name))
	}
	for _, k := range names {
		if v, ok := env[k]; ok {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	tmp := o.envFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.envFile); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "selftestenv: %s identity server %s, transparency service %s, registry %s\n",
		o.provider, env["TF_SELFTEST_IDS"], env["TF_SELFTEST_TS"], env["TF_SELFTEST_REGISTRY"])
	<-ctx.Done()
	return nil
}

// jobTokenVar names the variable holding a -job's runner request token.
func jobTokenVar(name string) string {
	return "TF_SELFTEST_JOB_" + strings.ToUpper(name) + "_REQUEST_TOKEN"
}

// start brings the services up (package servertest, on the composition root)
// and returns the variables to publish.
func start(ctx context.Context, o options) (map[string]string, func(), error) {
	env := map[string]string{}
	var run oidctest.GitHubRun
	if o.workflow != "" {
		run = oidctest.DefaultGitHubRun
		if owner, repo, ok := strings.Cut(o.repository, "/"); ok {
			run.Owner, run.Repo = owner, repo
		}
		run.WorkflowFile = o.workflow
	}
	e, err := servertest.Start(ctx, servertest.Config{
		Dir: o.dir, TrustDomain: trustDomain, Provider: o.provider, ExternalIssuer: o.issuer, AllowRepository: o.repository,
		Run: run,
	})
	if err != nil {
		return nil, func() {}, err
	}
	closeAll := func() { _ = e.Close() }
	switch {
	case e.GitHub != nil:
		env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = e.GitHub.RequestURL(), e.GitHub.RequestToken
		for _, j := range o.jobs {
			called := e.GitHub.Run()
			called.JobWorkflowRef = j.ref
			env[jobTokenVar(j.name)] = e.GitHub.AddJob(called)
		}
	case e.GitLab != nil:
		tok, err := e.GitLab.MintJob(oidctest.DefaultGitLabJob, e.IdentityURL)
		if err != nil {
			return nil, closeAll, err
		}
		env["TRUSTFABRIC_ID_TOKEN"] = tok
	}
	env["TF_SELFTEST_IDS"] = e.IdentityURL
	env["TF_SELFTEST_TS"] = e.TSURL
	env["TF_SELFTEST_REGISTRY"] = e.RegistryHost
	policy, err := writePolicy(o.dir, o.provider, e.TSURL, e.TSKeys, e.Bundle)
	if err != nil {
		return nil, closeAll, err
	}
	env["TF_SELFTEST_POLICY"] = policy
	if o.requireBuilder != "" {
		b, err := os.ReadFile(policy)
		if err != nil {
			return nil, closeAll, err
		}
		// The provenance section is the policy's last.
		b = fmt.Appendf(b, "  builderIDs: [%q]\n", o.requireBuilder)
		p := filepath.Join(o.dir, "policy-builder.yaml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, closeAll, err
		}
		env["TF_SELFTEST_BUILDER_POLICY"] = p
	}
	return env, closeAll, nil
}

func writePolicy(dir, provider, tsURL string, tsKeys keys.Set, bundle *wimse.Bundle) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	k, err := keys.MarshalCOSEKeySet(tsKeys)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "ts-keys.cbor"), k, 0o644); err != nil {
		return "", err
	}
	bb, err := bundle.Marshal()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "wit-bundle.json"), bb, 0o644); err != nil {
		return "", err
	}
	doc := fmt.Sprintf(`apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: %s
    keys: [ts-keys.cbor]
identities:
  - trustDomain: %s
    bundle: wit-bundle.json
workloads:
  - prefix: spiffe://%s/%s/
provenance:
  predicateTypes: [https://slsa.dev/provenance/v1]
`, tsURL, trustDomain, trustDomain, provider)
	p := filepath.Join(dir, "policy.yaml")
	return p, os.WriteFile(p, []byte(doc), 0o644)
}
