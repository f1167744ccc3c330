package admission

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trustfabric/trustfabric/pkg/policy"
)

// ConfigAPIVersion and ConfigKind identify an admission configuration.
const (
	ConfigAPIVersion = "trustfabric.dev/v1alpha1"
	ConfigKind       = "AdmissionConfig"
	// MaxConfigSize bounds a configuration file.
	MaxConfigSize = 1 << 20
	// DefaultPolicyName is the policy name `--policy FILE` gives its file.
	DefaultPolicyName = "default"
)

// ErrInvalidConfig is wrapped by every error about the configuration.
var ErrInvalidConfig = errors.New("invalid admission config")

// Config maps namespaces to verification policies.
//
//	apiVersion: trustfabric.dev/v1alpha1
//	kind: AdmissionConfig
//	policies:                  # name: verification policy file (pkg/policy format), relative to this file
//	  prod: prod-policy.yaml
//	  base: base-policy.yaml
//	namespaces:                # the first rule that matches the namespace decides
//	  - names: [payments, checkout]
//	    policy: prod
//	  - selector:              # a Kubernetes label selector on the namespace's labels
//	      matchLabels: {env: prod}
//	      matchExpressions:
//	        - {key: team, operator: In, values: [web, api]}
//	    policy: prod
//	default: base              # every other namespace; omit it to deny namespaces no rule names
//	exempt:                    # admitted without verification (and logged in the audit annotations)
//	  names: [kube-system, trustfabric-system]
//	  selector: {matchLabels: {trustfabric.dev/exempt: "true"}}
//	timeout: 8s                # per request, capped by the API server's own timeout for the webhook
//	multiArch:
//	  platformViaIndex: false  # see MultiArch
//
// Unknown fields are errors.
type Config struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Policies   map[string]string `yaml:"policies"`
	Namespaces []NamespaceRule   `yaml:"namespaces"`
	Default    string            `yaml:"default"`
	Exempt     Exempt            `yaml:"exempt"`
	// Timeout bounds one request's verification; the API server's timeout
	// for the webhook (its ?timeout= parameter), less a margin, is the other
	// bound. Default 8s.
	Timeout policy.Duration `yaml:"timeout"`
	// MultiArch says how image indexes and their platform manifests are
	// judged.
	MultiArch MultiArch `yaml:"multiArch"`

	dir      string
	policies map[string]*policy.Policy
}

// MultiArch is the multi-arch switch. Whatever it says, an image index is
// allowed when the index itself is attested, or, failing that, when every
// platform manifest it lists is attested (at most MaxPlatforms of them).
type MultiArch struct {
	// PlatformViaIndex also allows a platform manifest's digest that is not
	// attested itself when its index is: the reference must name the index
	// by tag next to the digest (REPO:TAG@sha256:PLATFORM), the tag must
	// resolve to an index that lists that digest, and the index must be
	// attested. OCI has no way back from a manifest to the indexes listing
	// it, so a bare REPO@sha256:PLATFORM, or one whose tag names no index, is
	// judged on its own statements alone.
	// Default false: a platform digest must carry its own statements (attest
	// --recursive writes them).
	PlatformViaIndex bool `yaml:"platformViaIndex"`
}

// NamespaceRule selects namespaces by name or by label selector (exactly
// one) and names their policy.
type NamespaceRule struct {
	Names    []string       `yaml:"names"`
	Selector *LabelSelector `yaml:"selector"`
	Policy   string         `yaml:"policy"`
}

// Exempt namespaces are admitted without verification.
type Exempt struct {
	Names    []string       `yaml:"names"`
	Selector *LabelSelector `yaml:"selector"`
}

// LabelSelector is a Kubernetes metav1.LabelSelector.
type LabelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []Requirement     `yaml:"matchExpressions"`
}

// Requirement is one matchExpressions entry: operator In, NotIn, Exists or
// DoesNotExist.
type Requirement struct {
	Key      string   `yaml:"key"`
	Operator string   `yaml:"operator"`
	Values   []string `yaml:"values"`
}

// Matches applies the selector to a namespace's labels. An empty selector
// matches everything (as in Kubernetes).
func (s *LabelSelector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		switch r.Operator {
		case "In":
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (s *LabelSelector) validate(where string) error {
	for i, r := range s.MatchExpressions {
		switch r.Operator {
		case "In", "NotIn":
			if len(r.Values) == 0 {
				return fmt.Errorf("%s.matchExpressions[%d]: operator %s needs values", where, i, r.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(r.Values) != 0 {
				return fmt.Errorf("%s.matchExpressions[%d]: operator %s takes no values", where, i, r.Operator)
			}
		default:
			return fmt.Errorf("%s.matchExpressions[%d]: operator %q: want In, NotIn, Exists or DoesNotExist", where, i, r.Operator)
		}
		if r.Key == "" {
			return fmt.Errorf("%s.matchExpressions[%d]: key is empty", where, i)
		}
	}
	return nil
}

// LoadConfig reads and validates a configuration file and the policies it
// names (relative to the file).
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read admission config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read admission config: %w", err)
	}
	c, err := ParseConfig(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// SinglePolicy is the configuration of `--policy FILE`: that policy for
// every namespace, nothing exempt (the webhook configuration's
// namespaceSelector keeps kube-system and the webhook's own namespace out).
func SinglePolicy(path string) (*Config, error) {
	p, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	return &Config{APIVersion: ConfigAPIVersion, Kind: ConfigKind, Policies: map[string]string{DefaultPolicyName: path},
		Default: DefaultPolicyName, Timeout: policy.Duration(8 * time.Second),
		policies: map[string]*policy.Policy{DefaultPolicyName: p}}, nil
}

// ParseConfig reads and validates a configuration; relative policy paths
// resolve against dir.
func ParseConfig(b []byte, dir string) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidConfig, MaxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the config is empty", ErrInvalidConfig)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalidConfig)
	}
	c.dir = dir
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func (c *Config) validate() error {
	if c.APIVersion != ConfigAPIVersion {
		return c.invalid("apiVersion %q: want %s", c.APIVersion, ConfigAPIVersion)
	}
	if c.Kind != ConfigKind {
		return c.invalid("kind %q: want %s", c.Kind, ConfigKind)
	}
	if len(c.Policies) == 0 {
		return c.invalid("policies is empty: name at least one verification policy file")
	}
	c.policies = map[string]*policy.Policy{}
	names := make([]string, 0, len(c.Policies))
	for n := range c.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := c.Policies[n]
		if !filepath.IsAbs(f) && c.dir != "" {
			f = filepath.Join(c.dir, f)
		}
		p, err := policy.Load(f)
		if err != nil {
			return fmt.Errorf("%w: policies.%s: %w", ErrInvalidConfig, n, err)
		}
		c.policies[n] = p
	}
	if len(c.Namespaces) == 0 && c.Default == "" {
		return c.invalid("neither namespaces nor default is set: every request would be denied")
	}
	for i, r := range c.Namespaces {
		where := fmt.Sprintf("namespaces[%d]", i)
		if (len(r.Names) == 0) == (r.Selector == nil) {
			return c.invalid("%s: give exactly one of names or selector", where)
		}
		for _, n := range r.Names {
			if !dns1123Label.MatchString(n) {
				return c.invalid("%s: %q is not a namespace name", where, n)
			}
		}
		if r.Selector != nil {
			if err := r.Selector.validate(where + ".selector"); err != nil {
				return c.invalid("%v", err)
			}
		}
		if _, ok := c.policies[r.Policy]; !ok {
			return c.invalid("%s: policy %q is not one of policies", where, r.Policy)
		}
	}
	if c.Default != "" {
		if _, ok := c.policies[c.Default]; !ok {
			return c.invalid("default: policy %q is not one of policies", c.Default)
		}
	}
	for _, n := range c.Exempt.Names {
		if !dns1123Label.MatchString(n) {
			return c.invalid("exempt.names: %q is not a namespace name", n)
		}
	}
	if c.Exempt.Selector != nil {
		if err := c.Exempt.Selector.validate("exempt.selector"); err != nil {
			return c.invalid("%v", err)
		}
	}
	if c.Timeout < 0 {
		return c.invalid("timeout must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = policy.Duration(8 * time.Second)
	}
	return nil
}

// usesLabels reports whether deciding a namespace's policy may need its
// labels.
func (c *Config) usesLabels() bool {
	if c.Exempt.Selector != nil {
		return true
	}
	for _, r := range c.Namespaces {
		if r.Selector != nil {
			return true
		}
	}
	return false
}
