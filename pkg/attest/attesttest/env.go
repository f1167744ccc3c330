// Package attesttest runs everything `trustfabric attest` talks to, in
// process and on loopback only: a fake GitHub Actions OIDC issuer with the
// runner's token request endpoint (pkg/identity/oidctest), the Identity
// Server trusting it (pkg/identity), a Transparency Service on Tessera's POSIX
// driver in a directory (pkg/transparency) that trusts the Identity Server's
// WIT bundle and requires WIMSE headers on registration, and an olareg
// registry (pkg/oci/ocitest) with a small random image pushed to it.
//
// It is used by tests, by benchmarks and by `trustfabric quickstart`, so it
// takes a context and a directory rather than a *testing.T. Only the GitHub
// fake is a fake (design.md §6): every other component is the real one.
package attesttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
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
}

// Env is a running environment. Its fields are read-only.
type Env struct {
	// GitHub is the fake GitHub Actions issuer and runner token endpoint.
	GitHub *oidctest.GitHub
	// IdentityURL is the Identity Server's URL (its WIT iss and the audience
	// of the CI tokens it accepts); Bundle its WIT bundle.
	IdentityURL string
	Identity    *identity.Server
	Bundle      *wimse.Bundle
	// TSURL is the Transparency Service's URL and also its issuer (receipt
	// iss); TSKeys its public keys.
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
	// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files in Dir.
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
		return nil, errors.New("attesttest: Config.Dir is required")
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
	e := &Env{Dir: cfg.Dir}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()

	// The fake CI issuer.
	if e.GitHub, err = oidctest.NewGitHub(); err != nil {
		return nil, fmt.Errorf("github fake: %w", err)
	}
	e.closers = append(e.closers, func() error { e.GitHub.Close(); return nil })
	if cfg.Run != (oidctest.GitHubRun{}) {
		e.GitHub.SetRun(cfg.Run)
	}

	// The Identity Server trusting it.
	idl, err := listen()
	if err != nil {
		return nil, err
	}
	e.IdentityURL = "http://" + idl.Addr().String()
	e.Identity, err = identity.New(ctx, identity.Config{
		TrustDomain: cfg.TrustDomain, Issuer: e.IdentityURL,
		Providers: []identity.ProviderConfig{{Type: identity.ProviderGitHub, Issuer: e.GitHub.URL(), Audience: e.IdentityURL}},
	})
	if err != nil {
		idl.Close()
		return nil, fmt.Errorf("identity server: %w", err)
	}
	e.serve(idl, e.Identity)
	e.Bundle = e.Identity.Bundle()

	// The Transparency Service trusting the bundle.
	tsl, err := listen()
	if err != nil {
		return nil, err
	}
	e.TSURL = "http://" + tsl.Addr().String()
	bundles := wimse.Bundles{e.Bundle}
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, nil, bundles)
	if err != nil {
		tsl.Close()
		return nil, fmt.Errorf("registration policy: %w", err)
	}
	e.TS, err = transparency.Open(ctx, transparency.Options{
		Dir: filepath.Join(cfg.Dir, "ts"), Issuer: e.TSURL, Policy: pol, CheckpointInterval: cfg.CheckpointInterval,
	})
	if err != nil {
		tsl.Close()
		return nil, fmt.Errorf("transparency service: %w", err)
	}
	e.closers = append(e.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return e.TS.Close(ctx)
	})
	e.TSKeys = e.TS.Keys()
	h := e.TS.Handler(transparency.HandlerOptions{})
	if !cfg.AnonymousRegistration {
		h = transparency.RequireWIMSE(h, &wimse.Authenticator{Bundles: bundles, Origins: []string{e.TSURL}, Replay: wimse.NewReplayCache(100000)})
	}
	e.serve(tsl, h)

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
	e.Vars = e.GitHub.Env()
	for k, f := range map[string]string{"GITHUB_OUTPUT": "github_output", "GITHUB_STEP_SUMMARY": "step_summary"} {
		p := filepath.Join(cfg.Dir, f)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return nil, err
		}
		e.Vars[k] = p
	}
	e.Vars["RUNNER_TEMP"] = cfg.Dir
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

func listen() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	return l, nil
}

// serve serves h on l until Close.
func (e *Env) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	e.closers = append(e.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
}
