package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// JWKS fetch limits of a CI issuer's key set.
const (
	// JWKSMinRefresh is the shortest time between two fetches of an issuer's
	// JWKS: a token whose kid is not in the cached set triggers a fetch only
	// when the last one is older than this, so forged tokens with made-up kids
	// cost the issuer at most one fetch per JWKSMinRefresh.
	JWKSMinRefresh = 30 * time.Second
	// JWKSMaxAge is how long a fetched key set is used before it is fetched
	// again on the next token (so that removed keys stop verifying).
	JWKSMaxAge = time.Hour
	// MaxJWKSSize bounds a JWKS response.
	MaxJWKSSize = 1 << 20
)

// remoteKeySet is an oidc.KeySet over an issuer's jwks_uri with a cache and
// a rate limit on misses (go-oidc's RemoteKeySet fetches the JWKS again for
// every token whose kid it does not know).
type remoteKeySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last fetch attempt
	lastErr   error
}

func newRemoteKeySet(url string, client *http.Client, now func() time.Time, algs []jose.SignatureAlgorithm) *remoteKeySet {
	return &remoteKeySet{url: url, client: client, now: now, algs: algs}
}

// VerifySignature implements oidc.KeySet.
func (r *remoteKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, r.algs) // an OIDC token is a compact JWS
	if err != nil {
		return nil, fmt.Errorf("parse JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := r.keysFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("no key of %s verifies the signature (kid %q)", r.url, kid)
}

// keysFor returns the cached keys, fetching the JWKS first when none are
// cached, when the cache is older than JWKSMaxAge, or when kid is not among
// them — but never twice within JWKSMinRefresh.
func (r *remoteKeySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	known := kid == "" && len(r.keys) > 0
	for _, k := range r.keys {
		if k.KeyID == kid {
			known = true
		}
	}
	stale := r.fetchedAt.IsZero() || now.Sub(r.fetchedAt) > JWKSMaxAge
	if (known && !stale) || (!r.triedAt.IsZero() && now.Sub(r.triedAt) < JWKSMinRefresh) {
		if len(r.keys) == 0 && r.lastErr != nil {
			return nil, r.lastErr
		}
		return r.keys, nil
	}
	r.triedAt = now
	keys, err := r.fetch(ctx)
	if err != nil {
		r.lastErr = fmt.Errorf("%w: JWKS %s: %w", ErrIssuerUnavailable, r.url, err)
		if len(r.keys) > 0 {
			return r.keys, nil // keep verifying with what we had
		}
		return nil, r.lastErr
	}
	r.keys, r.fetchedAt, r.lastErr = keys, now, nil
	return r.keys, nil
}

func (r *remoteKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxJWKSSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxJWKSSize)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no public signing keys")
	}
	return keys, nil
}
