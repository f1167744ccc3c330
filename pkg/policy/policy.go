// Package policy is the deployment gate: a verification policy (YAML) and
// the decision to allow or deny an OCI image on the SCITT evidence attached
// to it (design.md §1 step 6 and §4).
//
// # The chain
//
// For each referrer of type application/scitt-statement+cose the [Verifier]
// checks, in order: the statement parses and is about the image's digest;
// enough of its receipts verify offline against pinned Transparency Service
// keys (RFC 9942, vds 1); the statement's signature verifies with the key of
// its WIMSE Workload Identity Token, and the WIT verifies against the trusted
// identity bundle at the registration time the receipt records (or with a
// pinned static issuer key); the preimage hashes to the payload; the workload
// identifier and its immutable CI claims are allowed; and the in-toto/SLSA
// provenance satisfies the provenance rules (SLSA provenance only; other
// payloads, such as SBOMs, are checked against their content type). The
// image is allowed when each payload requirement is met by a candidate that
// passes every check; otherwise the [Decision] lists every candidate with
// each check and its reason.
//
// # The policy file
//
//	apiVersion: trustfabric.dev/v1alpha1
//	kind: VerificationPolicy
//	transparencyServices:
//	  - issuer: https://ts.example.org      # the receipts' CWT iss, when they carry one
//	    keys: [ts-keys.cbor]               # pinned COSE_KeySet/JWK/PEM files (relative to this file)
//	    leaf: ietf                         # or direct
//	requiredReceipts: 1
//	maxReceiptAge: 8760h
//	identities:
//	  - trustDomain: ci.example.org
//	    bundle: wit-bundle.json            # or bundleURL (not with --offline)
//	workloads:
//	  - prefix: spiffe://ci.example.org/github/acme/widgets/
//	    require: {repository_id: "123456"}
//	  - exact: spiffe://ci.example.org/k8s/prod/ns/ci/sa/release-bot
//	    selfReportedProvenance: true   # no signed CI facts in Kubernetes identities
//	provenance:
//	  predicateTypes: [https://slsa.dev/provenance/v1]
//	  sourceRepositories: ["https://github.com/acme/*"]
//	  refs: [refs/heads/main, "refs/tags/v*"]
//	  triggers: [push, workflow_dispatch]
//	payloads:                          # default: require the provenance only
//	  require:                         # each met by a statement that passes every check
//	    - name: provenance
//	      predicateTypes: [https://slsa.dev/provenance/v1]
//	    - name: sbom
//	      contentTypes: [application/vnd.cyclonedx+json, application/spdx+json]
//	      predicateTypes: [https://cyclonedx.org/bom, https://spdx.dev/Document]
//	  allow:                           # verified and reported, not required
//	    - contentTypes: [application/openvex+json]
//
// A credentials section (see [Credentials]) lets the gate allow an image on a
// selective-disclosure credential instead (pkg/credential.Gate); a policy
// holding only that section is a consumer's policy.
//
// Unknown fields are errors. A policy that trusts nothing (no service keys,
// no identities or issuer keys, no allowed workloads) is an error, never an
// allow-all.
package policy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// APIVersion and Kind identify a verification policy document.
const (
	APIVersion = "trustfabric.dev/v1alpha1"
	Kind       = "VerificationPolicy"
	// MaxPolicySize bounds a policy file.
	MaxPolicySize = 1 << 20
	// DefaultPredicateType is required when the policy names none.
	DefaultPredicateType = "https://slsa.dev/provenance/v1"
)

// ErrInvalidPolicy is wrapped by every error about the policy document.
var ErrInvalidPolicy = errors.New("invalid policy")

// Policy is a parsed, validated verification policy.
type Policy struct {
	APIVersion           string                `yaml:"apiVersion"`
	Kind                 string                `yaml:"kind"`
	TransparencyServices []TransparencyService `yaml:"transparencyServices"`
	// RequiredReceipts is how many distinct trusted services must have
	// registered the statement (default 1).
	RequiredReceipts int `yaml:"requiredReceipts"`
	// MaxReceiptAge, when set, refuses receipts issued longer ago.
	MaxReceiptAge Duration         `yaml:"maxReceiptAge"`
	Identities    []IdentityDomain `yaml:"identities"`
	// Issuers are static issuer keys, for statements signed without a WIT.
	Issuers    []StaticIssuer `yaml:"issuers"`
	Workloads  []Workload     `yaml:"workloads"`
	Provenance Provenance     `yaml:"provenance"`
	// Payloads are the kinds of Signed Statements the image must have
	// (Require) or may have (Allow). Default: require one in-toto statement
	// of a Provenance.PredicateTypes type.
	Payloads Payloads `yaml:"payloads"`
	// Credentials, when set, let the gate allow an image on a verifying
	// selective-disclosure credential (see Credentials).
	Credentials *Credentials `yaml:"credentials"`

	dir    string
	digest [32]byte
}

// TransparencyService is a trusted Transparency Service.
type TransparencyService struct {
	// Name labels the service in decisions (default: the issuer).
	Name string `yaml:"name"`
	// Issuer, when set, must equal the CWT iss of its receipts.
	Issuer string `yaml:"issuer"`
	// Keys are key files (COSE_Key/KeySet, JWK/JWK Set, PEM), relative to
	// the policy file; InlineKeys holds the same formats inline.
	Keys       []string `yaml:"keys"`
	InlineKeys []string `yaml:"inlineKeys"`
	// URL, with Kids, fetches /.well-known/scitt-keys and keeps only the
	// pinned kids (hex). Not used with --offline.
	URL  string   `yaml:"url"`
	Kids []string `yaml:"kids"`
	// Leaf is the service's leaf convention: ietf (default) or direct.
	Leaf string `yaml:"leaf"`
	// Witnesses, when set, requires the checkpoint each receipt carries
	// (scitt.LabelCheckpoint) to be the receipt's tree and cosigned by at
	// least Threshold of the trusted witness keys (C2SP tlog-cosignature);
	// checked offline, from the receipt alone.
	Witnesses *WitnessPolicy `yaml:"witnesses"`
}

// WitnessPolicy is the witness requirement of a Transparency Service.
type WitnessPolicy struct {
	// Keys are the witnesses' verifier keys (signed-note vkeys,
	// cosignature/v1 or Ed25519), inline.
	Keys []string `yaml:"keys"`
	// Threshold is how many of them must have cosigned (default: all).
	Threshold int `yaml:"threshold"`
}

// IdentityDomain is a trusted WIMSE trust domain.
type IdentityDomain struct {
	TrustDomain string `yaml:"trustDomain"`
	// Bundle is a WIT bundle file (JWK Set); BundleURL fetches one (not
	// with --offline).
	Bundle    string `yaml:"bundle"`
	BundleURL string `yaml:"bundleURL"`
}

// StaticIssuer trusts statements whose iss is Issuer, signed by Keys.
type StaticIssuer struct {
	Issuer     string   `yaml:"issuer"`
	Keys       []string `yaml:"keys"`
	InlineKeys []string `yaml:"inlineKeys"`
}

// Workload allows workload identifiers (statement issuers). Exactly one of
// Exact, Prefix (matched on path-segment boundaries) or Glob (path.Match
// syntax: * never crosses a /) is set. Require pins claims of the WIT's
// https://trustfabric.dev/ci claim set, e.g. repository_id, to exact values.
type Workload struct {
	Exact   string            `yaml:"exact"`
	Prefix  string            `yaml:"prefix"`
	Glob    string            `yaml:"glob"`
	Require map[string]string `yaml:"require"`
	// SelfReportedProvenance decides the provenance rules on the provenance
	// this workload writes, for identities that carry no signed CI facts
	// (Kubernetes service accounts, generic OIDC). Default false: the rules
	// are decided on the facts signed into the WIT, and a rule without its
	// fact denies. Set it only for workloads trusted to describe their builds.
	SelfReportedProvenance bool `yaml:"selfReportedProvenance"`
}

// Provenance are the rules on the in-toto statement (the preimage). Each
// list, when not empty, must match; patterns are globs where * matches any
// run of characters except /.
type Provenance struct {
	PredicateTypes     []string `yaml:"predicateTypes"`
	BuilderIDs         []string `yaml:"builderIDs"`
	SourceRepositories []string `yaml:"sourceRepositories"`
	Refs               []string `yaml:"refs"`
	Triggers           []string `yaml:"triggers"`
}

// Payloads say which Signed Statements count. Each Require rule must be met
// by at least one statement that passes every check (its own receipts,
// signature, identity and, for SLSA provenance, the provenance rules);
// statements that match an Allow rule are verified and reported but not
// required; a statement that matches no rule is rejected at the payload
// check and never satisfies the policy.
type Payloads struct {
	Require []PayloadRule `yaml:"require"`
	Allow   []PayloadRule `yaml:"allow"`
}

// PayloadRule matches a statement whose payload is an in-toto statement of
// one of PredicateTypes, or whose content type (type/subtype, parameters
// ignored) is one of ContentTypes. application/vnd.in-toto+json in
// ContentTypes matches every in-toto statement (bare or in a DSSE
// envelope).
type PayloadRule struct {
	// Name labels the rule in decisions (default: its types).
	Name           string   `yaml:"name"`
	ContentTypes   []string `yaml:"contentTypes"`
	PredicateTypes []string `yaml:"predicateTypes"`
}

func (r PayloadRule) String() string {
	if r.Name != "" {
		return r.Name
	}
	return strings.Join(append(append([]string{}, r.PredicateTypes...), r.ContentTypes...), " or ")
}

// matches reports whether a payload is of this rule's kind.
func (r PayloadRule) matches(p *provenance.Payload) bool {
	if p.Kind == provenance.KindInToto && (contains(r.PredicateTypes, p.PredicateType()) || contains(r.ContentTypes, provenance.MediaType)) {
		return true
	}
	return contains(r.ContentTypes, p.MediaType)
}

// Duration is a time.Duration written as "720h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 720h: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// Load reads and validates a policy file. Relative key and bundle paths are
// resolved against the file's directory.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Parse reads and validates a policy; relative paths resolve against dir.
func Parse(b []byte, dir string) (*Policy, error) { return parse(b, dir) }

func parse(b []byte, dir string) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidPolicy, MaxPolicySize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the policy is empty", ErrInvalidPolicy)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalidPolicy)
	}
	p.dir = dir
	p.digest = sha256.Sum256(b)
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Policy) invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
}

func (p *Policy) validate() error {
	if p.APIVersion != APIVersion {
		return p.invalid("apiVersion %q: want %s", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		return p.invalid("kind %q: want %s", p.Kind, Kind)
	}
	if p.Credentials != nil {
		if err := p.validateCredentials(); err != nil {
			return err
		}
		if p.CredentialOnly() {
			return nil
		}
	}
	if len(p.TransparencyServices) == 0 {
		return p.invalid("transparencyServices is empty: a policy must trust at least one Transparency Service")
	}
	for i, ts := range p.TransparencyServices {
		if len(ts.Keys) == 0 && len(ts.InlineKeys) == 0 && (ts.URL == "" || len(ts.Kids) == 0) {
			return p.invalid("transparencyServices[%d]: give keys, inlineKeys, or url with pinned kids", i)
		}
		if _, err := scitt.ParseLeafConvention(ts.Leaf); err != nil {
			return p.invalid("transparencyServices[%d]: %v", i, err)
		}
		if w := ts.Witnesses; w != nil {
			if len(w.Keys) == 0 {
				return p.invalid("transparencyServices[%d].witnesses: no keys", i)
			}
			if w.Threshold == 0 {
				w.Threshold = len(w.Keys)
			}
			if w.Threshold < 0 || w.Threshold > len(w.Keys) {
				return p.invalid("transparencyServices[%d].witnesses: threshold %d for %d keys", i, w.Threshold, len(w.Keys))
			}
			for _, k := range w.Keys {
				if _, err := scitt.ParseWitnessKey(k); err != nil {
					return p.invalid("transparencyServices[%d].witnesses: %v", i, err)
				}
			}
		}
	}
	if p.RequiredReceipts == 0 {
		p.RequiredReceipts = 1
	}
	if p.RequiredReceipts < 0 || p.RequiredReceipts > len(p.TransparencyServices) {
		return p.invalid("requiredReceipts %d: must be between 1 and the %d trusted services", p.RequiredReceipts, len(p.TransparencyServices))
	}
	if p.MaxReceiptAge < 0 {
		return p.invalid("maxReceiptAge must not be negative")
	}
	if len(p.Identities) == 0 && len(p.Issuers) == 0 {
		return p.invalid("identities and issuers are both empty: a policy must trust an identity trust domain or a static issuer key")
	}
	for i, d := range p.Identities {
		if d.TrustDomain == "" || strings.ContainsAny(d.TrustDomain, "/:@") {
			return p.invalid("identities[%d]: trustDomain %q must be a bare domain like ci.example.org", i, d.TrustDomain)
		}
		if (d.Bundle == "") == (d.BundleURL == "") {
			return p.invalid("identities[%d]: give exactly one of bundle or bundleURL", i)
		}
	}
	for i, is := range p.Issuers {
		if is.Issuer == "" || len(is.Keys)+len(is.InlineKeys) == 0 {
			return p.invalid("issuers[%d]: give issuer and keys", i)
		}
	}
	if len(p.Workloads) == 0 {
		return p.invalid("workloads is empty: list the workload identifiers allowed to deploy (exact, prefix or glob)")
	}
	for i, w := range p.Workloads {
		n := 0
		for _, s := range []string{w.Exact, w.Prefix, w.Glob} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return p.invalid("workloads[%d]: give exactly one of exact, prefix or glob", i)
		}
		if w.Glob != "" {
			if err := checkGlob(w.Glob); err != nil {
				return p.invalid("workloads[%d]: %v", i, err)
			}
		}
	}
	if len(p.Provenance.PredicateTypes) == 0 {
		p.Provenance.PredicateTypes = []string{DefaultPredicateType}
	}
	for _, list := range [][]string{p.Provenance.BuilderIDs, p.Provenance.SourceRepositories, p.Provenance.Refs} {
		for _, g := range list {
			if err := checkGlob(g); err != nil {
				return p.invalid("provenance: %v", err)
			}
		}
	}
	return p.validatePayloads()
}

// validatePayloads normalizes the content types of the payload rules and
// fills in the default requirement (the provenance, as before payload rules
// existed).
func (p *Policy) validatePayloads() error {
	if len(p.Payloads.Require) == 0 {
		p.Payloads.Require = []PayloadRule{{Name: "provenance", PredicateTypes: p.Provenance.PredicateTypes}}
	}
	names := map[string]bool{}
	for _, list := range []struct {
		key   string
		rules []PayloadRule
	}{{"require", p.Payloads.Require}, {"allow", p.Payloads.Allow}} {
		for i := range list.rules {
			r := &list.rules[i]
			if len(r.ContentTypes)+len(r.PredicateTypes) == 0 {
				return p.invalid("payloads.%s[%d]: give contentTypes or predicateTypes", list.key, i)
			}
			for j, ct := range r.ContentTypes {
				mt, err := provenance.NormalizeContentType(ct)
				if err != nil || strings.HasPrefix(ct, "coap:") {
					return p.invalid("payloads.%s[%d]: content type %q is not a media type like application/vnd.cyclonedx+json", list.key, i, ct)
				}
				r.ContentTypes[j] = mt
			}
			for _, pt := range r.PredicateTypes {
				// The provenance rules apply to the predicate types of
				// provenance.predicateTypes only: requiring another SLSA
				// provenance type would silently escape them.
				if strings.HasPrefix(pt, "https://slsa.dev/provenance/") && !contains(p.Provenance.PredicateTypes, pt) {
					return p.invalid("payloads.%s[%d]: predicate type %s is SLSA provenance: list it in provenance.predicateTypes too, so that the provenance rules apply to it", list.key, i, pt)
				}
			}
			if list.key == "require" {
				if names[r.String()] {
					return p.invalid("payloads.require[%d]: %q is required twice", i, r.String())
				}
				names[r.String()] = true
			}
		}
	}
	return nil
}

// Hash identifies the policy document (SHA-256 of its bytes), for caching
// decisions.
func (p *Policy) Hash() [32]byte { return p.digest }

func (p *Policy) path(f string) string {
	if filepath.IsAbs(f) || p.dir == "" {
		return f
	}
	return filepath.Join(p.dir, f)
}

func (p *Policy) loadKeys(files, inline []string) (keys.Set, error) {
	var ks keys.Set
	for _, f := range files {
		k, err := keys.LoadPublic(p.path(f))
		if err != nil {
			return nil, err
		}
		ks = append(ks, k...)
	}
	for i, s := range inline {
		k, err := keys.ParsePublic([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("inline key %d: %w", i, err)
		}
		ks = append(ks, k...)
	}
	return ks, nil
}

// String renders the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }
