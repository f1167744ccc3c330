package admission

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// Pull secret types and their data keys (core/v1 Secret).
const (
	SecretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	SecretTypeDockercfg        = "kubernetes.io/dockercfg"
	dockerConfigJSONKey        = ".dockerconfigjson"
	dockercfgKey               = ".dockercfg"
)

// Limits of a pull secret's registry configuration.
const (
	// MaxDockerConfigSize bounds the decoded .dockerconfigjson or .dockercfg
	// (a Secret holds at most 1 MiB; real ones are a few hundred bytes).
	MaxDockerConfigSize = 256 << 10
	// MaxDockerConfigEntries bounds the registries of one secret.
	MaxDockerConfigEntries = 256
	// maxDockerConfigKey bounds one registry key (host, port and path).
	maxDockerConfigKey = 512
)

// ErrBadDockerConfig wraps every refusal of a pull secret's content.
var ErrBadDockerConfig = errors.New("admission: bad registry credentials in pull secret")

// RegistryAuth is one registry entry of a pull secret: where it applies
// (a host with optional port, '*' globs per DNS label, and an optional
// path prefix, as the kubelet matches them) and the credentials.
type RegistryAuth struct {
	// Key is the entry's key as written in the secret.
	Key string
	// Host is the key's host[:port], lower case; Docker Hub's aliases are
	// "index.docker.io" (go-containerregistry's name for it).
	Host string
	// Path is the key's path prefix without slashes at either end ("" for
	// the whole registry).
	Path string
	// Auth holds the credentials. It is never logged.
	Auth authn.AuthConfig
}

// String names the entry without its credentials.
func (a RegistryAuth) String() string { return a.Key }

type dockerConfigEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
	Email         string `json:"email"`
}

// ParseDockerConfig reads the registry credentials of a pull secret's
// data: a kubernetes.io/dockerconfigjson secret's .dockerconfigjson
// ({"auths": {KEY: ENTRY}}) or a kubernetes.io/dockercfg secret's
// .dockercfg ({KEY: ENTRY}), where ENTRY has username and password, or
// auth (base64 of "user:password"), or identitytoken / registrytoken.
// Within the limits (MaxDockerConfigSize, MaxDockerConfigEntries, keys of
// at most 512 bytes, JSON nesting at most 8, no duplicate keys); errors
// wrap ErrBadDockerConfig and never quote a credential.
func ParseDockerConfig(secretType string, data []byte) ([]RegistryAuth, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadDockerConfig, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxDockerConfigSize {
		return nil, bad("%d bytes; the limit is %d", len(data), MaxDockerConfigSize)
	}
	if !utf8.Valid(data) {
		return nil, bad("not valid UTF-8")
	}
	if err := jsonlimit.CheckDepth(data, 8); err != nil {
		return nil, bad("%v", err)
	}
	if err := checkJSON(data); err != nil {
		return nil, bad("%v", err)
	}
	var entries map[string]json.RawMessage
	switch secretType {
	case SecretTypeDockerConfigJSON:
		var doc struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, bad("%s: %v", dockerConfigJSONKey, jsonErr(err))
		}
		entries = doc.Auths
	case SecretTypeDockercfg:
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, bad("%s: %v", dockercfgKey, jsonErr(err))
		}
	default:
		return nil, bad("secret type %q is not %s or %s", trunc(secretType), SecretTypeDockerConfigJSON, SecretTypeDockercfg)
	}
	if len(entries) > MaxDockerConfigEntries {
		return nil, bad("%d registries; the limit is %d", len(entries), MaxDockerConfigEntries)
	}
	out := make([]RegistryAuth, 0, len(entries))
	for key, raw := range entries {
		if len(key) > maxDockerConfigKey {
			return nil, bad("a registry key is longer than %d bytes", maxDockerConfigKey)
		}
		host, p, err := parseRegistryKey(key)
		if err != nil {
			if strings.ContainsAny(key, "@") {
				return nil, bad("a registry key with user information (not quoted): %v", err)
			}
			return nil, bad("registry %q: %v", trunc(key), err)
		}
		var e dockerConfigEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, bad("registry %q: %v", trunc(key), jsonErr(err))
		}
		a := RegistryAuth{Key: key, Host: host, Path: p, Auth: authn.AuthConfig{
			Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, bad("registry %q: auth is not base64", trunc(key))
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, bad("registry %q: auth is not base64 of user:password", trunc(key))
			}
			a.Auth.Username, a.Auth.Password = user, pass
		}
		if a.Auth == (authn.AuthConfig{}) {
			return nil, bad("registry %q: no credentials (username/password, auth, identitytoken or registrytoken)", trunc(key))
		}
		out = append(out, a)
	}
	sortAuths(out)
	return out, nil
}

// jsonErr keeps a decoding error's kind without the bytes it quotes (they
// could be a credential).
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type (%s)", te.Field, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	return errors.New("invalid JSON")
}

// dockerHubAliases are the names Docker Hub is written by in pull secrets.
var dockerHubAliases = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// parseRegistryKey splits a pull secret key ("registry.example:5000",
// "https://index.docker.io/v1/", "*.example.com/team") into host[:port] and
// a path prefix, as the kubelet reads them.
func parseRegistryKey(key string) (host, prefix string, err error) {
	k := key
	if i := strings.Index(k, "://"); i >= 0 {
		k = k[i+3:]
	}
	host, prefix, _ = strings.Cut(k, "/")
	host = strings.ToLower(host)
	if host == "" {
		return "", "", errors.New("no host")
	}
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.User != nil {
		return "", "", errors.New("not a host[:port]")
	}
	for _, label := range strings.Split(u.Hostname(), ".") {
		if label == "" {
			return "", "", errors.New("empty DNS label")
		}
		if _, err := path.Match(label, ""); err != nil {
			return "", "", errors.New("bad glob")
		}
	}
	if dockerHubAliases[host] {
		host = "index.docker.io"
	}
	prefix = strings.Trim(prefix, "/")
	// Docker's own keys carry the API version ("https://index.docker.io/v1/").
	if prefix == "v1" || prefix == "v2" {
		prefix = ""
	}
	return host, prefix, nil
}

// matches reports whether the entry applies to a repository at registry
// (host[:port], as go-containerregistry writes it) and repo (its path).
func (a RegistryAuth) matches(registry, repo string) bool {
	registry = strings.ToLower(registry)
	kh, kp := splitPort(a.Host)
	rh, rp := splitPort(registry)
	if kp != rp {
		return false
	}
	kl, rl := strings.Split(kh, "."), strings.Split(rh, ".")
	if len(kl) != len(rl) {
		return false
	}
	for i := range kl {
		if ok, _ := path.Match(kl[i], rl[i]); !ok {
			return false
		}
	}
	return a.Path == "" || repo == a.Path || strings.HasPrefix(repo, a.Path+"/")
}

func splitPort(hostport string) (host, port string) {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		return hostport[:i], hostport[i+1:]
	}
	return hostport, ""
}

// sortAuths orders the entries of one secret most specific first: a longer
// path prefix, then a host without globs, then the key (for a stable
// order; a map has none).
func sortAuths(as []RegistryAuth) {
	slices.SortFunc(as, func(a, b RegistryAuth) int {
		if c := cmp.Compare(len(b.Path), len(a.Path)); c != 0 {
			return c
		}
		ag, bg := strings.Contains(a.Host, "*"), strings.Contains(b.Host, "*")
		if ag != bg {
			if ag {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// PullKeychain is the keychain of a request's pull secrets, in order
// (the pod's imagePullSecrets, or its service account's), each secret's
// entries most specific first. A repository gets the first
// entry that matches it (the kubelet would try the others after a failed
// pull; the webhook does not); none matching, it resolves anonymously (so
// that a multi-keychain goes on to the next keychain).
type PullKeychain []RegistryAuth

// Resolve implements authn.Keychain.
func (k PullKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	registry := r.RegistryStr()
	repo := strings.TrimPrefix(strings.TrimPrefix(r.String(), registry), "/")
	if dockerHubAliases[registry] {
		registry = "index.docker.io"
	}
	for _, a := range k {
		if a.matches(registry, repo) {
			return authn.FromConfig(a.Auth), nil
		}
	}
	return authn.Anonymous, nil
}
