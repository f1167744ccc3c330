package oci

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Keychain returns the credentials source Trustfabric uses, in this order:
//
//  1. GitHub Actions: for ghcr.io, GITHUB_TOKEN as password (GITHUB_ACTOR as user).
//  2. GitLab CI: for the host in CI_REGISTRY, CI_REGISTRY_USER / CI_REGISTRY_PASSWORD.
//  3. go-containerregistry's default keychain: docker config.json (or $DOCKER_CONFIG,
//     $REGISTRY_AUTH_FILE, podman's auth.json), with credential helpers.
//  4. Anonymous.
//
// getenv reads the environment (os.Getenv when nil). Secrets are never logged.
func Keychain(getenv func(string) string) authn.Keychain {
	if getenv == nil {
		getenv = os.Getenv
	}
	return authn.NewMultiKeychain(githubKeychain{getenv}, gitlabKeychain{getenv}, authn.DefaultKeychain)
}

type githubKeychain struct{ getenv func(string) string }

func (k githubKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	tok := k.getenv("GITHUB_TOKEN")
	if r.RegistryStr() != "ghcr.io" || tok == "" {
		return authn.Anonymous, nil
	}
	user := k.getenv("GITHUB_ACTOR")
	if user == "" {
		user = "unset" // ghcr.io ignores the user name for token auth
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: tok}), nil
}

type gitlabKeychain struct{ getenv func(string) string }

func (k gitlabKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host, user, pass := k.getenv("CI_REGISTRY"), k.getenv("CI_REGISTRY_USER"), k.getenv("CI_REGISTRY_PASSWORD")
	if host == "" || user == "" || pass == "" || r.RegistryStr() != host {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
}

type requestKeychainKey struct{}

// WithRequestKeychain returns a context under which a Client tries kc before its own
// keychain, for requests made on behalf of someone whose credentials are not the
// process's (the admission webhook: a pod's imagePullSecrets). Transports are cached
// per repository and per credentials, so requests under different credentials never
// share an authenticated transport; [Client.CredentialID] names the credentials for
// caches built above the client.
func WithRequestKeychain(ctx context.Context, kc authn.Keychain) context.Context {
	return context.WithValue(ctx, requestKeychainKey{}, kc)
}

func requestKeychain(ctx context.Context) (authn.Keychain, bool) {
	kc, ok := ctx.Value(requestKeychainKey{}).(authn.Keychain)
	return kc, ok && kc != nil
}

// credentialKey keys the fingerprints of credentials (an HMAC, so that the fingerprint
// of a password says nothing about it outside this process).
var credentialKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k
}()

// credentialFingerprint names the credentials auth presents, without revealing them:
// "anonymous", or an HMAC-SHA-256 of the authorization under a per-process key.
func credentialFingerprint(auth authn.Authenticator) (string, error) {
	if auth == authn.Anonymous {
		return "anonymous", nil
	}
	cfg, err := auth.Authorization()
	if err != nil {
		return "", err
	}
	if *cfg == (authn.AuthConfig{}) {
		return "anonymous", nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, credentialKey)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil)[:16]), nil
}

// CredentialID names the credentials the client presents for ref's repository under
// ctx: "" when ctx carries no request keychain (the client's own credentials),
// otherwise a fingerprint that is equal for equal credentials ("anonymous" for none).
// Caches of results read under request credentials key on it, so that a result read
// with one pod's credentials is not served to a request that could not read it.
func (c *Client) CredentialID(ctx context.Context, ref string) (string, error) {
	kc, ok := requestKeychain(ctx)
	if !ok {
		return "", nil
	}
	r, err := c.parseRef(ref)
	if err != nil {
		return "", err
	}
	auth, err := authn.Resolve(ctx, authn.NewMultiKeychain(kc, c.keychain), r.Context())
	if err != nil {
		return "", fmt.Errorf("registry credentials for %s: %w", r.Context().RegistryStr(), err)
	}
	return credentialFingerprint(auth)
}
