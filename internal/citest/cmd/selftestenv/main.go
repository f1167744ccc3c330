// Command selftestenv runs, on loopback, the services the CI self-tests
// attest and verify against: an Identity Server trusting one CI issuer, a
// Transparency Service on Tessera that trusts the Identity Server's WIT bundle
// and requires WIMSE headers, and an olareg registry; all real components
// (pkg/identity, pkg/transparency, pkg/oci/ocitest). The CI issuer is
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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/transparency"
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
}

func run() error {
	var o options
	flag.StringVar(&o.provider, "provider", "github", "CI platform: github or gitlab")
	flag.StringVar(&o.issuer, "issuer", "", "github: trust this real OIDC issuer instead of running the fake")
	flag.StringVar(&o.repository, "repository", "", "github: owner/repo the identity is restricted to (the fake's run by default)")
	flag.StringVar(&o.dir, "dir", "", "data directory (required)")
	flag.StringVar(&o.envFile, "env-file", "", "file to write the variables to (required)")
	flag.Parse()
	if o.dir == "" || o.envFile == "" {
		return errors.New("-dir and -env-file are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, closeAll, err := start(ctx, o)
	defer closeAll()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, k := range []string{"TF_SELFTEST_REGISTRY", "TF_SELFTEST_TS", "TF_SELFTEST_IDS", "TF_SELFTEST_POLICY",
		"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "TRUSTFABRIC_ID_TOKEN"} {
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

// start brings the services up and returns the variables to publish.
func start(ctx context.Context, o options) (map[string]string, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	env := map[string]string{}

	// The CI issuer and the Identity Server trusting it.
	idl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, closeAll, err
	}
	idURL := "http://" + idl.Addr().String()
	prov := identity.ProviderConfig{Audience: idURL}
	var gitlab *oidctest.GitLab
	switch {
	case o.provider == "github" && o.issuer != "":
		prov.Type, prov.Issuer = identity.ProviderGitHub, o.issuer
	case o.provider == "github":
		gh, err := oidctest.NewGitHub()
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, gh.Close)
		if owner, repo, ok := strings.Cut(o.repository, "/"); ok {
			r := oidctest.DefaultGitHubRun
			r.Owner, r.Repo = owner, repo
			gh.SetRun(r)
		}
		prov.Type, prov.Issuer = identity.ProviderGitHub, gh.URL()
		env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = gh.RequestURL(), gh.RequestToken
	case o.provider == "gitlab":
		if gitlab, err = oidctest.NewGitLab(); err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, gitlab.Close)
		prov.Type, prov.Issuer = identity.ProviderGitLab, gitlab.URL()
	default:
		return nil, closeAll, fmt.Errorf("-provider %q: want github or gitlab", o.provider)
	}
	if o.provider == "github" && o.repository != "" {
		prov.Allow = map[string][]string{"repository": {o.repository}}
	}
	ids, err := identity.New(ctx, identity.Config{TrustDomain: trustDomain, Issuer: idURL, Providers: []identity.ProviderConfig{prov}})
	if err != nil {
		idl.Close()
		return nil, closeAll, fmt.Errorf("identity server: %w", err)
	}
	closers = append(closers, serve(idl, ids))
	env["TF_SELFTEST_IDS"] = idURL
	if gitlab != nil {
		tok, err := gitlab.MintJob(oidctest.DefaultGitLabJob, idURL)
		if err != nil {
			return nil, closeAll, err
		}
		env["TRUSTFABRIC_ID_TOKEN"] = tok
	}

	// The Transparency Service trusting the Identity Server's bundle.
	tsl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, closeAll, err
	}
	tsURL := "http://" + tsl.Addr().String()
	bundles := wimse.Bundles{ids.Bundle()}
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, nil, bundles)
	if err != nil {
		tsl.Close()
		return nil, closeAll, fmt.Errorf("registration policy: %w", err)
	}
	ts, err := transparency.Open(ctx, transparency.Options{Dir: filepath.Join(o.dir, "ts"), Issuer: tsURL, Policy: pol})
	if err != nil {
		tsl.Close()
		return nil, closeAll, fmt.Errorf("transparency service: %w", err)
	}
	closers = append(closers, func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ts.Close(c)
	})
	h := transparency.RequireWIMSE(ts.Handler(transparency.HandlerOptions{}),
		&wimse.Authenticator{Bundles: bundles, Origins: []string{tsURL}, Replay: wimse.NewReplayCache(100000)})
	closers = append(closers, serve(tsl, h))
	env["TF_SELFTEST_TS"] = tsURL

	// The registry.
	reg := ocitest.NewOlareg(nil)
	closers = append(closers, reg.Close)
	env["TF_SELFTEST_REGISTRY"] = reg.Host

	// A verification policy trusting all of it.
	policy, err := writePolicy(o.dir, o.provider, tsURL, ts.Keys(), ids.Bundle())
	if err != nil {
		return nil, closeAll, err
	}
	env["TF_SELFTEST_POLICY"] = policy
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

func serve(l net.Listener, h http.Handler) func() {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}
}
