// Package server composes what `trustfabric serve` runs on one port: the
// Transparency Service (pkg/transparency) and, when configured, the Identity
// Server (pkg/identity), with the Transparency Service accepting statements
// bound to Workload Identity Tokens of trusted trust domains and requiring
// WIMSE headers on registration (design.md §1, §3; issue 4 item 6).
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
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// identityKeyFile is where the Identity Server's signing key is kept in the
// data directory when its configuration names none.
const identityKeyFile = "identity-key.jwk"

// Options configure Run.
type Options struct {
	// TS are the Transparency Service's options (address, data directory,
	// registration policy, …).
	TS transparency.ServeOptions
	// IdentityConfig is the Identity Server's YAML configuration; empty
	// runs no Identity Server.
	IdentityConfig string
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
	// and the Identity Server's default issuer. Default: http://ADDR.
	PublicURL string
}

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.PublicURL == "" {
		host := o.TS.Addr
		if strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasSuffix(host, ":0") {
			return errors.New("--public-url is required when listening on all interfaces or on port 0: the URL clients reach this server at")
		}
		o.PublicURL = "http://" + host
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	var bundles wimse.Bundles
	var id *identity.Server
	if o.IdentityConfig != "" {
		cfg, err := identity.LoadConfig(o.IdentityConfig)
		if err != nil {
			return err
		}
		if cfg.Issuer == "" {
			cfg.Issuer = o.PublicURL
		}
		var opts []identity.Option
		if cfg.SigningKey == "" {
			key, err := loadOrCreateKey(filepath.Join(o.TS.Dir, identityKeyFile))
			if err != nil {
				return err
			}
			opts = append(opts, identity.WithSigningKey(key))
		}
		if o.TS.Logger != nil {
			opts = append(opts, identity.WithLogger(o.TS.Logger))
		}
		if id, err = identity.New(ctx, *cfg, opts...); err != nil {
			return err
		}
		bundles = append(bundles, id.Bundle())
	}
	for _, spec := range o.IdentityBundles {
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
		bundles = append(bundles, b)
	}
	for _, spec := range o.IdentityBundleAlgorithms {
		td, list, ok := strings.Cut(spec, "=")
		if !ok || td == "" || list == "" {
			return fmt.Errorf("--identity-bundle-alg %q: want TRUST_DOMAIN=ALG[,ALG]", spec)
		}
		algs, err := wimse.ParseAlgorithms(strings.Split(list, ","))
		if err != nil {
			return fmt.Errorf("--identity-bundle-alg %s: %w", spec, err)
		}
		found := false
		for _, b := range bundles {
			if !strings.EqualFold(b.TrustDomain, td) {
				continue
			}
			if id != nil && b == id.Bundle() {
				return fmt.Errorf("--identity-bundle-alg %s: the Identity Server's own trust domain keeps the WIT-SVID profile's algorithms", spec)
			}
			found = true
			b.Algorithms = append(slices.Clone(wimse.Algorithms), algs...)
		}
		if !found {
			return fmt.Errorf("--identity-bundle-alg %s: no --identity-bundle for trust domain %q", spec, td)
		}
	}
	require := len(bundles) > 0
	if o.RequireWIMSE != nil {
		require = *o.RequireWIMSE
	}
	if require && len(bundles) == 0 {
		return errors.New("WIMSE headers are required but no trust domain is trusted: give --identity-config or --identity-bundle")
	}
	if len(bundles) > 0 {
		o.TS.Bundles = bundles
	}
	o.TS.WIMSERequired = require
	// Each workload identity gets a share of the WPT replay cache, so that
	// one authenticated caller cannot fill it for everyone.
	auth := &wimse.Authenticator{Bundles: bundles, Origins: []string{o.PublicURL},
		Replay: wimse.NewReplayCache(1<<20, wimse.WithOwnerLimit(wimse.DefaultProofsPerCaller))}
	o.TS.Wrap = func(ts http.Handler) http.Handler {
		h := ts
		if require {
			h = transparency.RequireWIMSE(h, auth)
		}
		if id == nil {
			return h
		}
		mux := http.NewServeMux()
		mux.Handle("POST /token", id)
		mux.Handle("GET /.well-known/wit-bundle", id)
		mux.Handle("/", h)
		return mux
	}
	return transparency.ListenAndServe(ctx, o.TS)
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
