package transparency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// ServeOptions configures [ListenAndServe] (the `trustfabric serve` command).
type ServeOptions struct {
	// Addr is the listen address, HOST:PORT (port 0 picks a free port).
	Addr string
	// Dir is the data directory.
	Dir string
	// ConfigFile is the optional YAML configuration (see [Config]).
	ConfigFile string
	// TrustKeys are issuer public key files trusted for any issuer.
	TrustKeys []string
	// Issuer overrides the configuration's issuer (receipt iss).
	Issuer string
	// KeyFile is an optional receipt signing key file.
	KeyFile string
	// RotateKey retires the data directory's key and generates a new one.
	RotateKey bool
	// Bundles are the trusted WIT bundles for WIMSE-bound statements; none
	// rejects them.
	Bundles wimse.Bundles
	// WIMSERequired says that Wrap requires WIMSE headers on registration:
	// the policy's require_caller_issuer then defaults to on.
	WIMSERequired bool
	// Logger receives structured logs. Required.
	Logger *slog.Logger
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// Wrap, if set, wraps the service's handler: how `trustfabric serve`
	// mounts the Identity Server beside it and requires WIMSE headers on
	// registration (pkg/server).
	Wrap func(http.Handler) http.Handler
}

// ListenAndServe runs the Transparency Service until ctx ends, then shuts
// the HTTP server down gracefully and closes the log (publishing what is
// sequenced).
func ListenAndServe(ctx context.Context, o ServeOptions) error {
	cfg := &Config{}
	if o.ConfigFile != "" {
		var err error
		if cfg, err = LoadConfig(o.ConfigFile); err != nil {
			return err
		}
	}
	if cfg.Policy.RequireCallerIssuer == nil && o.WIMSERequired {
		on := true
		cfg.Policy.RequireCallerIssuer = &on
	}
	pol, err := NewPolicy(cfg.Policy, o.TrustKeys, o.Bundles)
	if err != nil {
		return err
	}
	opts := Options{Dir: o.Dir, Issuer: cfg.Issuer, KeyFile: o.KeyFile, RotateKey: o.RotateKey, Policy: pol, Logger: o.Logger}
	if o.Issuer != "" {
		opts.Issuer = o.Issuer
	}
	var hopts HandlerOptions
	for _, d := range []struct {
		s   string
		dst *time.Duration
		min time.Duration
	}{
		{cfg.RegistrationWait, &opts.RegistrationWait, 0},
		{cfg.CheckpointInterval, &opts.CheckpointInterval, 100 * time.Millisecond},
		{cfg.BatchMaxAge, &opts.BatchMaxAge, time.Millisecond},
		{cfg.BodyTimeout, &hopts.BodyTimeout, 100 * time.Millisecond},
	} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v < d.min {
			return fmt.Errorf("%w: duration %q (minimum %s)", ErrConfig, d.s, d.min)
		}
		*d.dst = v
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	svc, err := Open(ctx, opts)
	if err != nil {
		ln.Close()
		return err
	}
	maxConns := cfg.MaxConnectionsPerClient
	if maxConns == 0 {
		maxConns = DefaultMaxConnsPerClient
	}
	ln = limitConnsPerClient(ln, maxConns)
	h := svc.Handler(hopts)
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv := NewServer(o.Addr, h, o.Logger)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	o.Logger.InfoContext(ctx, "listening", slog.String("addr", ln.Addr().String()), slog.String("data", o.Dir))
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if cerr := svc.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
