// Package server is Trustfabric's composition root (design.md §5, style.md
// §36): it builds and runs, from configuration, what `trustfabric serve`
// serves on one port: the Transparency Service (pkg/transparency) and, when
// configured, the Identity Server (pkg/identity), with the Transparency
// Service accepting statements bound to Workload Identity Tokens of trusted
// trust domains and requiring WIMSE headers on registration (design.md §1,
// §3). The quickstart, the test/dev environment (package servertest) and the
// CI self-test environment start services through it and nowhere else.
//
// The Identity Server's own bundle is always trusted by the Transparency
// Service it runs beside; other trust domains are added with bundle files.
// WIMSE headers are required on POST /entries by default whenever a trust
// domain is configured (set RequireWIMSE to false to accept anonymous
// registrations of statements that still pass the registration policy).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	awsstorage "github.com/trustfabric/trustfabric/pkg/transparency/storage/aws"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// identityKeyFile is where the Identity Server's signing key is kept in the
// data directory when its configuration names none.
const identityKeyFile = "identity-key.jwk"

// Config is what to run: the `serve` flags and files.
type Config struct {
	// Addr is the listen address, HOST:PORT (port 0 picks a free port).
	// Ignored when Listener is set.
	Addr string
	// Listener, when set, is served instead of listening on Addr (for
	// callers that need the URL before the services are built).
	Listener net.Listener
	// Dir is the data directory. Required.
	Dir string
	// ConfigFile is the Transparency Service's optional YAML configuration
	// (see transparency.Config).
	ConfigFile string
	// TrustKeys are issuer public key files trusted for any issuer.
	TrustKeys []string
	// Issuer overrides the configuration's issuer (receipt iss).
	Issuer string
	// KeyFile is an optional receipt signing key file.
	KeyFile string
	// RotateKey retires the data directory's key and generates a new one.
	RotateKey bool
	// CheckpointInterval overrides the configuration file's. Zero: the
	// file's, else transparency.DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Witnessing overrides the configuration file's witnessing section.
	Witnessing *transparency.Witnessing
	// IdentityConfig is the Identity Server's YAML configuration file;
	// Identity an in-memory one (it wins). Neither: no Identity Server.
	IdentityConfig string
	Identity       *identity.Config
	// IdentityBundles are further trusted WIT bundles, "TRUST_DOMAIN=FILE".
	IdentityBundles []string
	// IdentityBundleAlgorithms allow further JWS algorithms (EdDSA) for the
	// WITs of a trust domain given in IdentityBundles:
	// "TRUST_DOMAIN=ALG[,ALG]" (added to the WIT-SVID profile's RS/ES/PS,
	// which stays the only list for the Identity Server's own domain).
	IdentityBundleAlgorithms []string
	// RequireWIMSE requires Workload-Identity-Token and Workload-Proof-Token
	// headers on POST /entries. nil: on when any trust domain is trusted.
	RequireWIMSE *bool
	// PublicURL is the external URL of the server: the WPT audience origin
	// and the Identity Server's default issuer. Default: http://ADDR, when
	// ADDR is a specific host.
	PublicURL string
	// Storage selects the Transparency Service's storage; its fields
	// override the configuration file's storage section. Kind "" or "posix":
	// the embedded log in Dir. Kind "aws": a MySQL-compatible database and an
	// S3-compatible bucket shared by every replica (KeyFile required, the
	// same for every replica; Dir keeps only local key state).
	Storage transparency.StorageConfig
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS with this PEM
	// certificate (chain) and key, reloaded when the files change. Default:
	// plain HTTP (behind a TLS-terminating proxy or on loopback).
	TLSCertFile, TLSKeyFile string
	// Logger receives structured logs. Default: discarded.
	Logger *slog.Logger
}

// Storage kinds of [Config].Storage.
const (
	StoragePOSIX = "posix"
	StorageAWS   = "aws"
)

// Server is a built composition, listening but not yet serving.
type Server struct {
	// TS is the Transparency Service; Identity the Identity Server (nil when
	// not configured); Bundles the WIT bundles the TS trusts.
	TS       *transparency.Service
	Identity *identity.Server
	Bundles  wimse.Bundles
	// URL is the public URL.
	URL string

	ln       net.Listener
	handler  http.Handler
	log      *slog.Logger
	tls      *certReloader
	metrics  *metrics
	draining atomic.Bool
	// replay is the replicas' shared record of used token ids (AWS
	// storage only).
	replay *awsstorage.Replay
}

// New builds the services of cfg and listens. On error, nothing is left open.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("a data directory is required (--data)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: cfg.Logger, ln: cfg.Listener}
	defer func() {
		if err != nil && s.ln != nil {
			s.ln.Close()
		}
		if err != nil && s.replay != nil {
			s.replay.Close()
		}
	}()
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	scheme := "http"
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		if s.tls, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Logger); err != nil {
			return nil, err
		}
		scheme = "https"
	}
	if s.URL, err = publicURL(cfg.PublicURL, scheme, cfg.Addr, s.ln.Addr().String()); err != nil {
		return nil, err
	}
	tsOpts, err := tsOptions(cfg)
	if err != nil {
		return nil, err
	}
	// One client IP address may hold at most maxConns connections (slow or
	// idle clients must not exhaust the server).
	s.ln = transparency.LimitConnsPerClient(s.ln, tsOpts.maxConns)
	if tsOpts.sharedDB != "" {
		// Replicas share one record of used CI token, DPoP and WPT ids, so
		// that a token used on one replica is refused by the others.
		if s.replay, err = awsstorage.OpenReplay(ctx, tsOpts.sharedDB, cfg.Logger); err != nil {
			return nil, err
		}
	}
	if err := s.buildIdentity(ctx, cfg); err != nil {
		return nil, err
	}
	require := len(s.Bundles) > 0
	if cfg.RequireWIMSE != nil {
		require = *cfg.RequireWIMSE
	}
	if require && len(s.Bundles) == 0 {
		return nil, errors.New("WIMSE headers are required but no trust domain is trusted: give --identity-config or --identity-bundle")
	}
	if tsOpts.pc.RequireCallerIssuer == nil && require {
		// With WIMSE headers required, a workload registers only statements
		// it issued, unless the configuration says otherwise.
		on := true
		tsOpts.pc.RequireCallerIssuer = &on
	}
	pol, err := transparency.NewPolicy(tsOpts.pc, cfg.TrustKeys, s.Bundles)
	if err != nil {
		return nil, err
	}
	tsOpts.Policy = pol
	if s.TS, err = transparency.Open(ctx, tsOpts.Options); err != nil {
		return nil, err
	}
	h := s.TS.Handler(tsOpts.handler)
	if require {
		// Each workload identity gets a share of the WPT replay cache, so
		// that one authenticated caller cannot fill it for everyone.
		local := wimse.NewReplayCache(1<<20, wimse.WithOwnerLimit(wimse.DefaultProofsPerCaller))
		var replay wimse.Replayer = local
		if s.replay != nil {
			replay = wimse.Layered(s.replay.Scope("wpt"), local)
		}
		h = transparency.RequireWIMSE(h, &wimse.Authenticator{Bundles: s.Bundles, Origins: []string{s.URL}, Replay: replay})
	}
	if s.Identity != nil {
		mux := http.NewServeMux()
		mux.Handle("POST "+wimse.TokenPath, s.Identity)
		mux.Handle("GET "+wimse.BundlePath, s.Identity)
		mux.Handle("/", h)
		h = mux
	}
	s.handler = s.operations(h)
	return s, nil
}

// Run builds cfg and serves until ctx ends; ready, when set, is called with
// the bound address once serving. It is what `trustfabric serve` runs.
func Run(ctx context.Context, cfg Config, ready func(addr string)) error {
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s.Addr())
	}
	return s.Serve(ctx)
}

// Addr is the bound listen address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the composed HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves until ctx ends, then shuts the HTTP server down gracefully and
// closes the log (publishing what is sequenced).
func (s *Server) Serve(ctx context.Context) error {
	srv := transparency.NewServer(s.Addr(), s.handler, s.log)
	errc := make(chan error, 1)
	if s.tls != nil {
		srv.TLSConfig = s.tls.tlsConfig()
		go func() { errc <- srv.ServeTLS(s.ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(s.ln) }()
	}
	s.log.InfoContext(ctx, "listening", slog.String("addr", s.Addr()), slog.String("url", s.URL))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if cerr := s.TS.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	if s.replay != nil {
		if cerr := s.replay.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func publicURL(configured, scheme, addr, bound string) (string, error) {
	if configured != "" {
		return strings.TrimRight(configured, "/"), nil
	}
	host := addr
	if host == "" || strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, "[::]:") {
		return "", errors.New("--public-url is required when listening on all interfaces: the URL clients reach this server at")
	}
	if strings.HasSuffix(host, ":0") {
		host = bound
	}
	return scheme + "://" + host, nil
}

// InitLogKey creates the log's checkpoint key in cfg.Dir when missing,
// without starting anything, and returns its verifier key (signed-note
// vkey): what the witnesses of a new log must be given before its first
// start (`serve --init-log-key`).
func InitLogKey(cfg Config) (string, error) {
	o, err := tsOptions(cfg)
	if err != nil {
		return "", err
	}
	return transparency.InitLogKey(o.Options)
}

type tsConfig struct {
	transparency.Options
	pc       transparency.PolicyConfig
	handler  transparency.HandlerOptions
	maxConns int
	// sharedDB is the replicas' database DSN (AWS storage), which also
	// holds the shared replay record.
	sharedDB string
}

// tsOptions reads the Transparency Service's configuration file and flags.
func tsOptions(cfg Config) (tsConfig, error) {
	file := &transparency.Config{}
	if cfg.ConfigFile != "" {
		var err error
		if file, err = transparency.LoadConfig(cfg.ConfigFile); err != nil {
			return tsConfig{}, err
		}
	}
	o := tsConfig{pc: file.Policy, Options: transparency.Options{Dir: cfg.Dir, Issuer: file.Issuer, Origin: file.Origin, Witnessing: file.Witnessing, KeyFile: cfg.KeyFile, RotateKey: cfg.RotateKey, Logger: cfg.Logger}}
	if cfg.Issuer != "" {
		o.Issuer = cfg.Issuer
	}
	for _, d := range []struct {
		s   string
		dst *time.Duration
		min time.Duration
	}{
		{file.RegistrationWait, &o.RegistrationWait, 0},
		{file.CheckpointInterval, &o.CheckpointInterval, 100 * time.Millisecond},
		{file.BatchMaxAge, &o.BatchMaxAge, time.Millisecond},
		{file.BodyTimeout, &o.handler.BodyTimeout, 100 * time.Millisecond},
	} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v < d.min {
			return tsConfig{}, fmt.Errorf("%w: duration %q (minimum %s)", transparency.ErrConfig, d.s, d.min)
		}
		*d.dst = v
	}
	if cfg.CheckpointInterval != 0 {
		o.CheckpointInterval = cfg.CheckpointInterval
	}
	if cfg.Witnessing != nil {
		o.Witnessing = cfg.Witnessing
	}
	sc := mergeStorage(file.Storage, cfg.Storage)
	switch sc.Kind {
	case "", StoragePOSIX:
		if sc.DB != "" || sc.S3Bucket != "" || sc.S3Endpoint != "" || sc.S3PathStyle || sc.S3Prefix != "" {
			return tsConfig{}, fmt.Errorf("%w: database and bucket settings need storage kind %q (--storage aws)", transparency.ErrConfig, StorageAWS)
		}
	case StorageAWS:
		if sc.DB == "" || sc.S3Bucket == "" {
			return tsConfig{}, fmt.Errorf("%w: storage %q needs a database DSN (--db, or TF_DB_DSN) and a bucket (--s3-bucket)", transparency.ErrConfig, StorageAWS)
		}
		if cfg.KeyFile == "" {
			return tsConfig{}, fmt.Errorf("%w: storage %q needs the receipt key in a file (--key), the same for every replica", transparency.ErrConfig, StorageAWS)
		}
		var claim time.Duration
		if sc.ClaimTimeout != "" {
			var err error
			if claim, err = time.ParseDuration(sc.ClaimTimeout); err != nil || claim < 100*time.Millisecond {
				return tsConfig{}, fmt.Errorf("%w: storage claim_timeout %q (minimum 100ms)", transparency.ErrConfig, sc.ClaimTimeout)
			}
		}
		o.SharedLog = true
		o.sharedDB = sc.DB
		// The checkpoint is an S3 object here, published at most once a
		// second: polling it every 5 ms (the POSIX default, a file read)
		// would cost a signed GET each time for nothing.
		o.PollInterval = 50 * time.Millisecond
		o.Backend = func(ctx context.Context, bc transparency.BackendConfig) (storage.Log, storage.Statements, error) {
			ci := o.CheckpointInterval
			if ci == 0 {
				ci = transparency.DefaultCheckpointInterval
			}
			return awsstorage.Open(ctx, awsstorage.Config{DSN: sc.DB, Bucket: sc.S3Bucket, Endpoint: sc.S3Endpoint,
				PathStyle: sc.S3PathStyle, BucketPrefix: sc.S3Prefix, ClaimTimeout: claim, Signer: bc.Signer, CheckpointInterval: max(ci, time.Second),
				BatchMaxAge: o.BatchMaxAge, Witnesses: bc.Witnesses, WitnessOptions: bc.WitnessOptions, Logger: cfg.Logger})
		}
	default:
		return tsConfig{}, fmt.Errorf("%w: storage kind %q: want %q or %q", transparency.ErrConfig, sc.Kind, StoragePOSIX, StorageAWS)
	}
	o.maxConns = file.MaxConnectionsPerClient
	if o.maxConns == 0 {
		o.maxConns = transparency.DefaultMaxConnsPerClient
	}
	return o, nil
}

// mergeStorage overlays the flags' storage settings on the file's.
func mergeStorage(file, flags transparency.StorageConfig) transparency.StorageConfig {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&file.Kind, flags.Kind}, {&file.DB, flags.DB}, {&file.S3Bucket, flags.S3Bucket}, {&file.S3Endpoint, flags.S3Endpoint},
		{&file.S3Prefix, flags.S3Prefix}, {&file.ClaimTimeout, flags.ClaimTimeout},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	file.S3PathStyle = file.S3PathStyle || flags.S3PathStyle
	return file
}

// buildIdentity starts the Identity Server when configured and collects the
// trusted bundles.
func (s *Server) buildIdentity(ctx context.Context, cfg Config) error {
	idCfg := cfg.Identity
	if idCfg == nil && cfg.IdentityConfig != "" {
		c, err := identity.LoadConfig(cfg.IdentityConfig)
		if err != nil {
			return err
		}
		idCfg = c
	}
	if idCfg != nil {
		c := *idCfg
		if c.Issuer == "" {
			c.Issuer = s.URL
		}
		opts := []identity.Option{identity.WithLogger(cfg.Logger)}
		if s.replay != nil {
			opts = append(opts, identity.WithSharedReplay(s.replay.Scope))
		}
		if c.SigningKey == "" {
			key, err := loadOrCreateKey(filepath.Join(cfg.Dir, identityKeyFile))
			if err != nil {
				return err
			}
			opts = append(opts, identity.WithSigningKey(key))
		}
		id, err := identity.New(ctx, c, opts...)
		if err != nil {
			return err
		}
		s.Identity = id
		s.Bundles = append(s.Bundles, id.Bundle())
	}
	for _, spec := range cfg.IdentityBundles {
		td, file, ok := strings.Cut(spec, "=")
		if !ok || td == "" || file == "" {
			return fmt.Errorf("--identity-bundle %q: want TRUST_DOMAIN=FILE", spec)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		b, err := wimse.ParseBundle(td, raw)
		if err != nil {
			return fmt.Errorf("--identity-bundle %s: %w", spec, err)
		}
		s.Bundles = append(s.Bundles, b)
	}
	for _, spec := range cfg.IdentityBundleAlgorithms {
		td, list, ok := strings.Cut(spec, "=")
		if !ok || td == "" || list == "" {
			return fmt.Errorf("--identity-bundle-alg %q: want TRUST_DOMAIN=ALG[,ALG]", spec)
		}
		algs, err := wimse.ParseAlgorithms(strings.Split(list, ","))
		if err != nil {
			return fmt.Errorf("--identity-bundle-alg %s: %w", spec, err)
		}
		found := false
		for _, b := range s.Bundles {
			if !strings.EqualFold(b.TrustDomain, td) {
				continue
			}
			if s.Identity != nil && b == s.Identity.Bundle() {
				return fmt.Errorf("--identity-bundle-alg %s: the Identity Server's own trust domain keeps the WIT-SVID profile's algorithms", spec)
			}
			found = true
			b.Algorithms = append(slices.Clone(wimse.Algorithms), algs...)
		}
		if !found {
			return fmt.Errorf("--identity-bundle-alg %s: no --identity-bundle for trust domain %q", spec, td)
		}
	}
	return nil
}

// loadOrCreateKey keeps the Identity Server's key across restarts, so that
// the bundle verifiers pinned stays valid.
func loadOrCreateKey(path string) (*keys.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(raw, &jwk); err != nil {
			return nil, fmt.Errorf("identity key %s: %w", path, err)
		}
		return keys.FromJWK(jwk)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(key.PrivateJWK())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
