package admission

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Limits and cache of pull secret lookups.
const (
	// PullSecretCacheTTL is how long a secret or a service account read
	// from the API server is reused (a rotated secret is seen after at
	// most this long).
	PullSecretCacheTTL = 30 * time.Second
	// MaxPullSecrets bounds the pull secrets of one request (the pod's, or
	// its service account's).
	MaxPullSecrets = 32
	// maxSecretSize bounds a Secret or ServiceAccount object as read
	// (etcd's default object limit is 1.5 MiB).
	maxSecretSize = 2 << 20
)

// PullRefs names where a request's registry credentials come from: the
// pod spec's imagePullSecrets, or when it has none its service account's.
type PullRefs struct {
	ServiceAccount string
	Secrets        []string
}

// PullSecrets returns the registry credentials of a request's pull
// secrets in namespace ns: the named secrets or, when there are none, those
// of the service account (as the ServiceAccount admission plugin fills a
// pod's imagePullSecrets). A secret or service account that does not exist is skipped (as
// the kubelet does: the pull may still work anonymously); a secret of
// another type is skipped; any other failure (RBAC, API server
// unreachable, a malformed secret) is an error, and the request is denied.
type PullSecrets func(ctx context.Context, ns string, refs PullRefs) (PullKeychain, error)

// KubePullSecrets reads pull secrets and service accounts from the
// Kubernetes API (GET /api/v1/namespaces/NS/secrets/NAME and
// .../serviceaccounts/NAME; RBAC get on secrets and serviceaccounts),
// caching each object for PullSecretCacheTTL.
func KubePullSecrets(api KubeAPI) (PullSecrets, error) {
	kc, err := newKubeClient(api)
	if err != nil {
		return nil, err
	}
	c := &pullSecretReader{kube: kc, secrets: map[string]secretEntry{}, accounts: map[string]accountEntry{}, now: time.Now}
	return c.keychain, nil
}

type secretEntry struct {
	auths   []RegistryAuth
	err     error
	expires time.Time
}

type accountEntry struct {
	secrets []string
	expires time.Time
}

type pullSecretReader struct {
	kube *kubeClient
	now  func() time.Time

	mu       sync.Mutex
	secrets  map[string]secretEntry // ns/name
	accounts map[string]accountEntry
}

// maxCacheEntries bounds each cache; past it, it starts over.
const maxCacheEntries = 4096

func (c *pullSecretReader) keychain(ctx context.Context, ns string, refs PullRefs) (PullKeychain, error) {
	if !dns1123Label.MatchString(ns) {
		return nil, fmt.Errorf("%q is not a namespace name", ns)
	}
	// The pod's own secrets, or when it lists none its service account's:
	// what the ServiceAccount admission plugin gives the pods, and so what
	// the kubelet pulls with.
	names := refs.Secrets
	if len(names) == 0 && refs.ServiceAccount != "" {
		var err error
		if names, err = c.serviceAccount(ctx, ns, refs.ServiceAccount); err != nil {
			return nil, err
		}
	}
	if len(names) > MaxPullSecrets {
		return nil, fmt.Errorf("%w: %d pull secrets; the limit is %d", ErrTooMany, len(names), MaxPullSecrets)
	}
	var out PullKeychain
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		auths, err := c.secret(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		out = append(out, auths...)
	}
	return out, nil
}

func (c *pullSecretReader) serviceAccount(ctx context.Context, ns, name string) ([]string, error) {
	if !dns1123Subdomain(name) {
		return nil, fmt.Errorf("%w: service account %q is not a valid name", ErrBadReview, trunc(name))
	}
	key := ns + "/" + name
	c.mu.Lock()
	if e, ok := c.accounts[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.secrets, nil
	}
	c.mu.Unlock()
	var sa struct {
		ImagePullSecrets []struct {
			Name string `json:"name"`
		} `json:"imagePullSecrets"`
	}
	var names []string
	err := c.kube.get(ctx, "/api/v1/namespaces/"+ns+"/serviceaccounts/"+name, "serviceaccount "+key,
		"get on serviceaccounts", maxSecretSize, &sa)
	switch {
	case errors.Is(err, errKubeNotFound):
		// No such account (yet): the pod's own secrets still apply.
	case err != nil:
		return nil, err
	default:
		if len(sa.ImagePullSecrets) > MaxPullSecrets {
			return nil, fmt.Errorf("%w: service account %s lists %d pull secrets; the limit is %d", ErrTooMany, key, len(sa.ImagePullSecrets), MaxPullSecrets)
		}
		for _, s := range sa.ImagePullSecrets {
			if s.Name != "" {
				names = append(names, s.Name)
			}
		}
	}
	c.mu.Lock()
	if len(c.accounts) >= maxCacheEntries {
		clear(c.accounts)
	}
	c.accounts[key] = accountEntry{secrets: names, expires: c.now().Add(PullSecretCacheTTL)}
	c.mu.Unlock()
	return names, nil
}

func (c *pullSecretReader) secret(ctx context.Context, ns, name string) ([]RegistryAuth, error) {
	if !dns1123Subdomain(name) {
		return nil, fmt.Errorf("%w: pull secret %q is not a valid name", ErrBadReview, trunc(name))
	}
	key := ns + "/" + name
	c.mu.Lock()
	if e, ok := c.secrets[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.auths, e.err
	}
	c.mu.Unlock()
	var obj struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	var auths []RegistryAuth
	err := c.kube.get(ctx, "/api/v1/namespaces/"+ns+"/secrets/"+name, "secret "+key, "get on secrets", maxSecretSize, &obj)
	switch {
	case errors.Is(err, errKubeNotFound):
		err = nil // the kubelet skips a missing pull secret too
	case err != nil:
		return nil, err // not cached: the API server may answer next time
	default:
		auths, err = secretAuths(obj.Type, obj.Data)
		if err != nil {
			err = fmt.Errorf("pull secret %s: %w", key, err)
		}
	}
	c.mu.Lock()
	if len(c.secrets) >= maxCacheEntries {
		clear(c.secrets)
	}
	c.secrets[key] = secretEntry{auths: auths, err: err, expires: c.now().Add(PullSecretCacheTTL)}
	c.mu.Unlock()
	return auths, err
}

// secretAuths reads the registry entries of a Secret's data (values in
// base64, as the API server returns them). Secrets of other types hold no
// registry credentials: none.
func secretAuths(typ string, data map[string]string) ([]RegistryAuth, error) {
	var field string
	switch typ {
	case SecretTypeDockerConfigJSON:
		field = dockerConfigJSONKey
	case SecretTypeDockercfg:
		field = dockercfgKey
	default:
		return nil, nil
	}
	enc, ok := data[field]
	if !ok {
		return nil, fmt.Errorf("%w: a %s secret without %s", ErrBadDockerConfig, typ, field)
	}
	if base64.StdEncoding.DecodedLen(len(enc)) > MaxDockerConfigSize+3 {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadDockerConfig, field, MaxDockerConfigSize)
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64", ErrBadDockerConfig, field)
	}
	return ParseDockerConfig(typ, b)
}

// dns1123Subdomain reports whether s is a valid object name (secrets and
// service accounts): lower-case alphanumerics, '-' and '.', at most 253.
func dns1123Subdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !dns1123Label.MatchString(label) {
			return false
		}
	}
	return true
}
