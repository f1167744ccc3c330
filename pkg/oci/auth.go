package oci

import (
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
