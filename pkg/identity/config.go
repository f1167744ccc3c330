package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"
)

// Lifetimes of issued WITs.
const (
	DefaultWITLifetime = 10 * time.Minute
	MaxWITLifetime     = 15 * time.Minute
	// MaxConfigSize bounds the configuration file.
	MaxConfigSize = 1 << 20
)

// Config is the identity configuration (YAML). Unknown fields are rejected.
type Config struct {
	// TrustDomain is the authority of every identifier issued.
	TrustDomain string `yaml:"trustDomain"`
	// Issuer is the WIT iss and the base of the token endpoint URL that DPoP
	// proofs must name; the serve command sets it to its URL when empty.
	Issuer string `yaml:"issuer"`
	// WITLifetime is the WIT lifetime (default 10m, at most 15m).
	WITLifetime time.Duration `yaml:"witLifetime"`
	// SigningKey is an optional path to the server's private JWK; a fresh
	// ES256 key is used when empty.
	SigningKey string `yaml:"signingKey"`
	// Providers are the trusted CI token issuers.
	Providers []ProviderConfig `yaml:"providers"`
}

// ProviderConfig is one trusted CI token issuer and its issuance rules.
type ProviderConfig struct {
	// Type is github, gitlab, kubernetes or oidc.
	Type string `yaml:"type"`
	// Issuer is the exact iss of the CI tokens.
	Issuer string `yaml:"issuer"`
	// Audience is the exact aud incoming CI tokens must carry.
	Audience string `yaml:"audience"`
	// JWKS is an optional pinned key set file; OIDC discovery when empty.
	JWKS string `yaml:"jwks"`
	// Algorithms restricts the token algorithms (subset of RS256, ES256;
	// default both).
	Algorithms []string `yaml:"algorithms"`
	// Allow: every listed claim must match one of its values (exact, or a
	// path.Match glob).
	Allow map[string][]string `yaml:"allow"`
	// Identifier is the identifier template; the provider default when empty.
	Identifier string `yaml:"identifier"`
	// Cluster names a Kubernetes cluster in identifiers (default: the host of
	// the issuer URL).
	Cluster string `yaml:"cluster"`
	// AllowPullRequestTargetUnsafe lets GitHub pull_request_target runs get an
	// identity (refused by default: they carry the base repository's identity
	// while running a fork's change).
	AllowPullRequestTargetUnsafe bool `yaml:"allowPullRequestTargetUnsafe"`
	// AllowForkMergeRequestsUnsafe lets GitLab merge-request pipelines from forks
	// (or from instances too old to tell) get an identity; refused by default.
	AllowForkMergeRequestsUnsafe bool `yaml:"allowForkMergeRequestsUnsafe"`
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(file string) (*Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrConfig, file, err)
	}
	return ParseConfig(data)
}

// ParseConfig decodes YAML strictly (unknown fields are errors) and validates
// the result.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrConfig, len(data), MaxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty configuration", ErrConfig)
		}
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrConfig)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the configuration and fills defaults (WITLifetime).
func (c *Config) Validate() error {
	if _, err := spiffeid.TrustDomainFromString(c.TrustDomain); err != nil {
		return fmt.Errorf("%w: trustDomain %q: %w", ErrConfig, c.TrustDomain, err)
	}
	if c.Issuer != "" {
		if err := checkURL(c.Issuer); err != nil {
			return fmt.Errorf("%w: issuer: %w", ErrConfig, err)
		}
	}
	switch {
	case c.WITLifetime == 0:
		c.WITLifetime = DefaultWITLifetime
	case c.WITLifetime < 0 || c.WITLifetime > MaxWITLifetime:
		return fmt.Errorf("%w: witLifetime %s must be between 0 and %s", ErrConfig, c.WITLifetime, MaxWITLifetime)
	}
	if len(c.Providers) == 0 {
		return fmt.Errorf("%w: no providers: list the CI token issuers to trust", ErrConfig)
	}
	seen := map[string]bool{}
	for i := range c.Providers {
		p := &c.Providers[i]
		if err := p.validate(c.TrustDomain); err != nil {
			return fmt.Errorf("%w: providers[%d]: %w", ErrConfig, i, err)
		}
		if seen[p.Issuer] {
			return fmt.Errorf("%w: providers[%d]: issuer %q is listed twice", ErrConfig, i, p.Issuer)
		}
		seen[p.Issuer] = true
	}
	return nil
}

func (p *ProviderConfig) validate(td string) error {
	kind, ok := kinds[p.Type]
	if !ok {
		return fmt.Errorf("type %q: want github, gitlab, kubernetes or oidc", p.Type)
	}
	if err := checkURL(p.Issuer); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if p.Audience == "" {
		return errors.New("audience is required: CI tokens must be minted for this server")
	}
	for _, a := range p.Algorithms {
		if a != "RS256" && a != "ES256" {
			return fmt.Errorf("algorithm %q: only RS256 and ES256 are accepted", a)
		}
	}
	for claim, pats := range p.Allow {
		if len(pats) == 0 {
			return fmt.Errorf("allow.%s lists no values", claim)
		}
		for _, pat := range pats {
			if _, err := path.Match(pat, ""); err != nil {
				return fmt.Errorf("allow.%s: pattern %q: %w", claim, pat, err)
			}
		}
	}
	tmpl := p.Identifier
	if tmpl == "" {
		tmpl = kind.template
	}
	if _, err := ParseTemplate(tmpl, td, kind.depth); err != nil {
		return fmt.Errorf("identifier: %w", err)
	}
	return nil
}

func (p *ProviderConfig) algorithms() []string {
	if len(p.Algorithms) == 0 {
		return []string{"RS256", "ES256"}
	}
	return slices.Clone(p.Algorithms)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL without query or fragment", s)
	}
	return nil
}
