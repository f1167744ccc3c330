// Package servertest is Trustfabric's one test/dev environment: everything
// `trustfabric attest` and `verify` talk to, in process and on loopback only.
// A fake CI OIDC issuer (GitHub Actions with the runner's token request
// endpoint, or GitLab; pkg/identity/oidctest), and, started through the
// composition root (pkg/server) on one port, the Identity Server trusting it
// and a Transparency Service on Tessera's POSIX driver that trusts the
// Identity Server's WIT bundle and requires WIMSE headers on registration;
// plus an olareg registry (pkg/oci/ocitest) with a small random image.
//
// It is used by tests, by benchmarks, by `trustfabric quickstart` and by the
// CI self-test environment (devtools/selftestenv), so it takes a context and
// a directory rather than a *testing.T. Only the CI issuer is a fake
// (design.md §6): every other component is the real one.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// Defaults of Config.
const (
	DefaultTrustDomain = "ci.example.org"
	DefaultRepository  = "acme/widgets"
	DefaultTag         = "v1"
)

// Config tunes Start. Only Dir is required.
type Config struct {
	// Dir holds the Transparency Service's data and the runner's files
	// (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY). Required; Close does not remove it.
	Dir string
	// TrustDomain of the identifiers the Identity Server issues. Default
	// DefaultTrustDomain.
	TrustDomain string
	// Provider is the CI platform whose tokens the Identity Server trusts:
	// "github" (default) or "gitlab".
	Provider string
	// ExternalIssuer, for github, trusts that real OIDC issuer instead of
	// running the fake (the CI self-test on a real runner).
	ExternalIssuer string
	// AllowRepository, when set, restricts identities to this owner/repo.
	AllowRepository string
	// Run is the GitHub workflow run the fake mints tokens for. Zero fields
	// take oidctest.DefaultGitHubRun's values.
	Run oidctest.GitHubRun
	// AnonymousRegistration lets the Transparency Service accept
	// registrations without WIMSE headers. Default: they are required.
	AnonymousRegistration bool
	// CheckpointInterval of the Transparency Service's log. Default
	// transparency.DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Repository and Tag name the random image pushed. Defaults
	// DefaultRepository and DefaultTag.
	Repository, Tag string
	// RegistryMiddleware, when set, wraps the registry's handler (fault
	// injection: see the ocitest middleware). The image is pushed through it.
	RegistryMiddleware func(http.Handler) http.Handler
	// Witnesses, when set, is called with the log's checkpoint verifier key
	// before the Transparency Service starts (the witnesses must know the
	// log before its first checkpoint) and returns the witnesses to send
	// checkpoints to; all of them must cosign (fail closed).
	Witnesses func(logVKey string) ([]transparency.WitnessEndpoint, error)
	// Logger receives the services' logs. Default: discarded.
	Logger *slog.Logger
}

// Env is a running environment. Its fields are read-only.
type Env struct {
	// GitHub is the fake GitHub Actions issuer and runner token endpoint;
	// GitLab the fake GitLab issuer. Each is nil unless it is the provider.
	GitHub *oidctest.GitHub
	GitLab *oidctest.GitLab
	// Server is the composition pkg/server built: Transparency Service and
	// Identity Server on one port.
	Server *server.Server
	// IdentityURL is the Identity Server's URL (its WIT iss and the audience
	// of the CI tokens it accepts); Bundle its WIT bundle.
	IdentityURL string
	Identity    *identity.Server
	Bundle      *wimse.Bundle
	// TSURL is the Transparency Service's URL and also its issuer (receipt
	// iss); TSKeys its public keys. It is IdentityURL: one server.
	TSURL  string
	TS     *transparency.Service
	TSKeys keys.Set
	// Registry is the olareg registry; RegistryHost its host:port.
	Registry     *ocitest.Registry
	RegistryHost string
	// Image is the pushed image by digest (host/repo@sha256:…), ImageTag by
	// tag (host/repo:tag).
	Image, ImageTag string
	// Vars is the GitHub runner environment of a job of Config.Run, with
	// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files in Dir (github only).
	Vars map[string]string
	// Dir is Config.Dir.
	Dir string

	closers []func() error
}

// Getenv reads Vars; it is the getenv of a process running in the job.
func (e *Env) Getenv(k string) string { return e.Vars[k] }

// Close stops every component, the Transparency Service last so that its
// log is flushed. It is safe to call more than once.
func (e *Env) Close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// Start starts the environment. On error everything started is stopped.
func Start(ctx context.Context, cfg Config) (_ *Env, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("servertest: Config.Dir is required")
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = DefaultTrustDomain
	}
	if cfg.Repository == "" {
		cfg.Repository = DefaultRepository
	}
	if cfg.Tag == "" {
		cfg.Tag = DefaultTag
	}
	if cfg.Provider == "" {
		cfg.Provider = identity.ProviderGitHub
	}
	e := &Env{Dir: cfg.Dir}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	url := "http://" + l.Addr().String()

	// The CI issuer.
	prov := identity.ProviderConfig{Type: cfg.Provider, Audience: url}
	switch {
	case cfg.Provider == identity.ProviderGitHub && cfg.ExternalIssuer != "":
		prov.Issuer = cfg.ExternalIssuer
	case cfg.Provider == identity.ProviderGitHub:
		if e.GitHub, err = oidctest.NewGitHub(); err != nil {
			l.Close()
			return nil, fmt.Errorf("github fake: %w", err)
		}
		e.closers = append(e.closers, func() error { e.GitHub.Close(); return nil })
		run := cfg.Run
		if owner, repo, ok := strings.Cut(cfg.AllowRepository, "/"); ok && run == (oidctest.GitHubRun{}) {
			run = oidctest.DefaultGitHubRun
			run.Owner, run.Repo = owner, repo
		}
		if run != (oidctest.GitHubRun{}) {
			e.GitHub.SetRun(run)
		}
		prov.Issuer = e.GitHub.URL()
	case cfg.Provider == identity.ProviderGitLab:
		if e.GitLab, err = oidctest.NewGitLab(); err != nil {
			l.Close()
			return nil, fmt.Errorf("gitlab fake: %w", err)
		}
		e.closers = append(e.closers, func() error { e.GitLab.Close(); return nil })
		prov.Issuer = e.GitLab.URL()
	default:
		l.Close()
		return nil, fmt.Errorf("servertest: provider %q: want github or gitlab", cfg.Provider)
	}
	if cfg.AllowRepository != "" && cfg.Provider == identity.ProviderGitHub {
		prov.Allow = map[string][]string{"repository": {cfg.AllowRepository}}
	}

	// The Identity Server and the Transparency Service, through the
	// composition root.
	require := !cfg.AnonymousRegistration
	var wit *transparency.Witnessing
	if cfg.Witnesses != nil {
		vkey, err := transparency.InitLogKey(transparency.Options{Dir: filepath.Join(cfg.Dir, "ts"), Issuer: url})
		if err != nil {
			l.Close()
			return nil, err
		}
		ws, err := cfg.Witnesses(vkey)
		if err != nil {
			l.Close()
			return nil, err
		}
		wit = &transparency.Witnessing{Witnesses: ws}
	}
	e.Server, err = server.New(ctx, server.Config{
		Listener: l, PublicURL: url, Dir: filepath.Join(cfg.Dir, "ts"), Issuer: url, Witnessing: wit,
		CheckpointInterval: cfg.CheckpointInterval, RequireWIMSE: &require, Logger: cfg.Logger,
		Identity: &identity.Config{TrustDomain: cfg.TrustDomain, Issuer: url, Providers: []identity.ProviderConfig{prov}},
	})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- e.Server.Serve(sctx) }()
	e.closers = append(e.closers, func() error { cancel(); return <-done })
	e.IdentityURL, e.TSURL = url, url
	e.Identity, e.TS = e.Server.Identity, e.Server.TS
	e.Bundle = e.Identity.Bundle()
	e.TSKeys = e.TS.Keys()

	// The registry and the image.
	rh, stop := ocitest.NewOlaregHandler(nil)
	if cfg.RegistryMiddleware != nil {
		rh = cfg.RegistryMiddleware(rh)
	}
	e.Registry = ocitest.Serve(rh, stop)
	e.closers = append(e.closers, func() error { e.Registry.Close(); return nil })
	e.RegistryHost = e.Registry.Host
	e.ImageTag = e.RegistryHost + "/" + cfg.Repository + ":" + cfg.Tag
	if e.Image, err = PushRandomImage(ctx, e.ImageTag); err != nil {
		return nil, err
	}

	// The runner environment.
	if e.GitHub != nil {
		e.Vars = e.GitHub.Env()
		for k, f := range map[string]string{"GITHUB_OUTPUT": "github_output", "GITHUB_STEP_SUMMARY": "step_summary"} {
			p := filepath.Join(cfg.Dir, f)
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return nil, err
			}
			e.Vars[k] = p
		}
		e.Vars["RUNNER_TEMP"] = cfg.Dir
	}
	return e, nil
}

// PushRandomImage pushes a small random image (one 1 KiB layer) to ref
// (host/repo:tag, plain HTTP) and returns it as host/repo@sha256:….
func PushRandomImage(ctx context.Context, ref string) (string, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		return "", err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Name() + "@" + d.String(), nil
}
