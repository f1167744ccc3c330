package transparency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/veraison/go-cose"
	"go.yaml.in/yaml/v3"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/witstatement"
)

// DefaultMaxStatementSize is the default registration size limit (1 MiB).
const DefaultMaxStatementSize = 1 << 20

// Default iat window of the registration policy (iat_window): a statement's
// iat may be at most DefaultIATFuture ahead of the registration time and at
// most DefaultIATPast behind it. An iat before 1970 is always refused.
const (
	DefaultIATFuture = 5 * time.Minute
	DefaultIATPast   = 5 * 365 * 24 * time.Hour
)

// maxConfigSize bounds the YAML configuration file.
const maxConfigSize = 1 << 20

// Config is the YAML configuration file of the service (--config). Every
// field is optional. Example:
//
//	issuer: https://ts.example.com
//	registration_wait: 2s
//	checkpoint_interval: 100ms
//	batch_max_age: 100ms
//	max_connections_per_client: 2048
//	body_timeout: 10s
//	policy:
//	  trusted_issuers:
//	    - issuer: https://ci.example.com
//	      keys: [issuer-key.jwk]
//	  trust_keys: [any-issuer.pem]      # keys accepted for any iss
//	  algorithms: [ES256, ES384, EdDSA]
//	  max_statement_size: 1048576
//	  required_headers: [alg, kid, iss, sub]
//	  iat_window: {past: 8760h, future: 5m}
type Config struct {
	Issuer string `yaml:"issuer"`
	// Origin is the checkpoint origin of a new log; default the issuer's
	// URL prefix without scheme (Options.Origin).
	Origin             string `yaml:"origin"`
	RegistrationWait   string `yaml:"registration_wait"`
	CheckpointInterval string `yaml:"checkpoint_interval"`
	BatchMaxAge        string `yaml:"batch_max_age"`
	// MaxConnectionsPerClient caps concurrent connections from one IP
	// address; 0 means DefaultMaxConnsPerClient, a negative value no cap.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// BodyTimeout bounds the time to send a registration body (a Go
	// duration); default DefaultBodyTimeout.
	BodyTimeout string       `yaml:"body_timeout"`
	Policy      PolicyConfig `yaml:"policy"`
	// Witnessing configures witness cosignatures (see [Witnessing]).
	Witnessing *Witnessing `yaml:"witnessing"`
	// Storage selects the storage backend (the `serve --storage` flags win).
	Storage StorageConfig `yaml:"storage"`
}

// StorageConfig is the storage section of [Config].
type StorageConfig struct {
	// Kind is "posix" (default: the log and statements in the data
	// directory) or "aws" (Tessera's AWS driver: a MySQL-compatible database
	// and an S3-compatible bucket, shared by replicas).
	Kind string `yaml:"kind"`
	// DB is the database DSN (user:password@tcp(host:port)/dbname) of the
	// aws backend.
	DB string `yaml:"db"`
	// S3Bucket, S3Endpoint (empty: AWS S3) and S3PathStyle locate the aws
	// backend's bucket.
	S3Bucket    string `yaml:"s3_bucket"`
	S3Endpoint  string `yaml:"s3_endpoint"`
	S3PathStyle bool   `yaml:"s3_path_style"`
	// S3Prefix, when set, is prepended to every object name (several logs
	// in one bucket, each with its own database).
	S3Prefix string `yaml:"s3_prefix"`
	// ClaimTimeout is how long a replica waits for another replica's
	// unfinished append of an entry before taking it over (a Go duration;
	// default 30s).
	ClaimTimeout string `yaml:"claim_timeout"`
}

// PolicyConfig is the registration policy section of [Config].
type PolicyConfig struct {
	// TrustedIssuers binds issuer identifiers (CWT iss) to their keys.
	TrustedIssuers []TrustedIssuer `yaml:"trusted_issuers"`
	// TrustKeys are key files accepted for any issuer (--trust-key).
	TrustKeys []string `yaml:"trust_keys"`
	// Algorithms allowed for statements. Default ES256, ES384, ES512,
	// PS256, EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// MaxStatementSize in bytes. Default 1 MiB.
	MaxStatementSize int64 `yaml:"max_statement_size"`
	// RequiredHeaders names protected headers that must be present, among
	// alg, kid, iss, sub, iat, cty. Default alg, kid, iss, sub; alg, iss and
	// kid are always required.
	RequiredHeaders []string `yaml:"required_headers"`
	// IATWindow bounds iat, when present, relative to the registration time.
	// Default: DefaultIATPast and DefaultIATFuture; "0s" removes a bound.
	IATWindow struct {
		Past   string `yaml:"past"`
		Future string `yaml:"future"`
	} `yaml:"iat_window"`
	// RequireCallerIssuer requires a statement's iss to equal the WIT sub of
	// the workload registering it (the verified Workload-Identity-Token of
	// the request), so that one workload cannot register statements in
	// another's name. Default: on when registration requires WIMSE headers
	// (pkg/server sets it), else off.
	RequireCallerIssuer *bool `yaml:"require_caller_issuer"`
}

// TrustedIssuer is one entry of the trust registry.
type TrustedIssuer struct {
	Issuer string   `yaml:"issuer"`
	Keys   []string `yaml:"keys"`
}

// LoadConfig reads and strictly decodes a YAML configuration file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigSize)
	}
	return ParseConfig(b)
}

// ParseConfig decodes YAML configuration; unknown fields are errors.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &c, nil
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("invalid configuration")

var headerNames = []string{"alg", "kid", "iss", "sub", "iat", "cty"}

// Policy is a compiled registration policy.
type Policy struct {
	registry  []trustEntry
	algs      map[cose.Algorithm]bool
	maxSize   int64
	required  map[string]bool
	iatPast   time.Duration
	iatFuture time.Duration
	callerIss bool
	bundles   wimse.Bundles
	doc       policyDoc
}

type trustEntry struct {
	issuer string // "" = any issuer
	keys   keys.Set
}

// policyDoc is the JSON form of the policy registered at start-up.
type policyDoc struct {
	Type             string        `json:"type"`
	TrustedIssuers   []policyTrust `json:"trusted_issuers"`
	Algorithms       []string      `json:"algorithms"`
	MaxStatementSize int64         `json:"max_statement_size"`
	RequiredHeaders  []string      `json:"required_headers"`
	IATWindowPast    string        `json:"iat_window_past,omitempty"`
	IATWindowFuture  string        `json:"iat_window_future,omitempty"`
	WIMSE            bool          `json:"wimse_bound_statements"`
	CallerIssuer     bool          `json:"require_caller_issuer,omitempty"`
}

type policyTrust struct {
	Issuer string   `json:"issuer,omitempty"`
	KIDs   []string `json:"jwk_thumbprints"`
}

// NewPolicy compiles the policy section plus extra trusted key files (the
// --trust-key flags). Statements bound to a Workload Identity Token are
// accepted when the WIT verifies against one of bundles (package
// witstatement); with no bundles they are rejected.
func NewPolicy(pc PolicyConfig, trustKeys []string, bundles wimse.Bundles) (*Policy, error) {
	p := &Policy{algs: map[cose.Algorithm]bool{}, maxSize: pc.MaxStatementSize, required: map[string]bool{}, bundles: bundles}
	if p.maxSize == 0 {
		p.maxSize = DefaultMaxStatementSize
	}
	if p.maxSize < 0 || p.maxSize > scitt.MaxStatementSize {
		return nil, fmt.Errorf("%w: max_statement_size %d (allowed 1..%d)", ErrConfig, p.maxSize, scitt.MaxStatementSize)
	}
	algs := pc.Algorithms
	if len(algs) == 0 {
		for _, a := range keys.StatementAlgorithms() {
			algs = append(algs, a.Name)
		}
	}
	for _, a := range algs {
		alg, err := keys.ParseStatementAlgorithm(a)
		if err != nil {
			return nil, fmt.Errorf("%w: algorithm: %w", ErrConfig, err)
		}
		p.algs[alg] = true
	}
	req := pc.RequiredHeaders
	if len(req) == 0 {
		req = []string{"alg", "kid", "iss", "sub"}
	}
	req = append(req, "alg", "kid", "iss")
	for _, h := range req {
		if !slices.Contains(headerNames, h) {
			return nil, fmt.Errorf("%w: required header %q (known: %s)", ErrConfig, h, strings.Join(headerNames, ", "))
		}
		p.required[h] = true
	}
	var err error
	p.iatPast, p.iatFuture = DefaultIATPast, DefaultIATFuture
	if pc.RequireCallerIssuer != nil {
		p.callerIss = *pc.RequireCallerIssuer
	}
	if pc.IATWindow.Past != "" {
		if p.iatPast, err = time.ParseDuration(pc.IATWindow.Past); err != nil || p.iatPast < 0 {
			return nil, fmt.Errorf("%w: iat_window.past %q", ErrConfig, pc.IATWindow.Past)
		}
	}
	if pc.IATWindow.Future != "" {
		if p.iatFuture, err = time.ParseDuration(pc.IATWindow.Future); err != nil || p.iatFuture < 0 {
			return nil, fmt.Errorf("%w: iat_window.future %q", ErrConfig, pc.IATWindow.Future)
		}
	}
	for _, ti := range pc.TrustedIssuers {
		if ti.Issuer == "" || len(ti.Keys) == 0 {
			return nil, fmt.Errorf("%w: a trusted issuer needs an issuer and at least one key file", ErrConfig)
		}
		e := trustEntry{issuer: ti.Issuer}
		for _, f := range ti.Keys {
			ks, err := keys.LoadPublic(f)
			if err != nil {
				return nil, fmt.Errorf("%w: trusted issuer %s: %w", ErrConfig, ti.Issuer, err)
			}
			e.keys = append(e.keys, ks...)
		}
		p.registry = append(p.registry, e)
	}
	for _, f := range append(slices.Clone(pc.TrustKeys), trustKeys...) {
		ks, err := keys.LoadPublic(f)
		if err != nil {
			return nil, fmt.Errorf("%w: trust key: %w", ErrConfig, err)
		}
		p.registry = append(p.registry, trustEntry{keys: ks})
	}
	p.doc = p.document(pc)
	return p, nil
}

func (p *Policy) document(pc PolicyConfig) policyDoc {
	d := policyDoc{Type: "trustfabric registration policy v1", MaxStatementSize: p.maxSize, WIMSE: len(p.bundles) > 0,
		CallerIssuer: p.callerIss}
	if p.iatPast > 0 {
		d.IATWindowPast = p.iatPast.String()
	}
	if p.iatFuture > 0 {
		d.IATWindowFuture = p.iatFuture.String()
	}
	for alg := range p.algs {
		a, _ := keys.AlgorithmOfCOSE(alg)
		d.Algorithms = append(d.Algorithms, a.Name)
	}
	sort.Strings(d.Algorithms)
	for _, h := range headerNames {
		if p.required[h] {
			d.RequiredHeaders = append(d.RequiredHeaders, h)
		}
	}
	for _, e := range p.registry {
		t := policyTrust{Issuer: e.issuer}
		for _, k := range e.keys {
			t.KIDs = append(t.KIDs, fmt.Sprintf("%x", k.JWKThumbprint()))
		}
		d.TrustedIssuers = append(d.TrustedIssuers, t)
	}
	return d
}

// Document returns the JSON policy document the service registers at
// start-up so that auditors can see which policy applied.
func (p *Policy) Document() []byte {
	b, _ := json.MarshalIndent(p.doc, "", "  ")
	return b
}

// MaxStatementSize is the registration size limit in bytes.
func (p *Policy) MaxStatementSize() int64 { return p.maxSize }

// Check applies the registration policy to a parsed statement and verifies
// its signature (RFC 9943 §5.1.1): algorithm allow-list, required protected
// headers, iat window, the caller's identity (RequireCallerIssuer), trusted
// issuer and key (or the WIMSE seam), then the signature. Errors wrap
// ErrRejected, ErrUnknownKey, ErrUntrustedIssuer or a pkg/scitt sentinel.
func (p *Policy) Check(ctx context.Context, st *scitt.Statement, now time.Time) error {
	if !p.algs[st.Alg] {
		if st.Alg == 0 {
			return fmt.Errorf("%w: no alg (1) in the protected header", scitt.ErrUnsupportedAlgorithm)
		}
		return fmt.Errorf("%w: %v is not accepted by this service's policy", scitt.ErrUnsupportedAlgorithm, st.Alg)
	}
	switch {
	case p.required["iss"] && st.Issuer == "":
		return fmt.Errorf("%w: the protected header has no CWT claims (15) with iss (1)", scitt.ErrMissingClaims)
	case p.required["sub"] && st.Subject == "":
		return fmt.Errorf("%w: the CWT claims (15) have no sub (2)", scitt.ErrMissingClaims)
	case p.required["iat"] && st.IssuedAt.IsZero():
		return fmt.Errorf("%w: the CWT claims (15) have no iat (6)", scitt.ErrMissingClaims)
	case p.required["cty"] && st.ContentType == "" && st.PreimageContentType == "":
		return fmt.Errorf("%w: no content type (3 or 259) in the protected header", ErrRejected)
	case st.WIT == "" && p.required["kid"] && len(st.KID) == 0:
		return fmt.Errorf("%w: no kid (4) in the protected header (x5chain issuers are not supported)", ErrRejected)
	}
	if !st.IssuedAt.IsZero() {
		if st.IssuedAt.Before(time.Unix(0, 0)) {
			return fmt.Errorf("%w: iat %d is before 1970", ErrRejected, st.IssuedAt.Unix())
		}
		if p.iatPast > 0 && st.IssuedAt.Before(now.Add(-p.iatPast)) {
			return fmt.Errorf("%w: iat %s is older than the policy's window of %s", ErrRejected, st.IssuedAt.UTC().Format(time.RFC3339), p.iatPast)
		}
		if p.iatFuture > 0 && st.IssuedAt.After(now.Add(p.iatFuture)) {
			return fmt.Errorf("%w: iat %s is more than %s in the future", ErrRejected, st.IssuedAt.UTC().Format(time.RFC3339), p.iatFuture)
		}
	}
	if p.callerIss {
		id, ok := wimse.FromContext(ctx)
		if !ok {
			return fmt.Errorf("%w: the policy requires the statement's iss to be the registering workload's identifier, and this registration carries no verified workload identity", ErrRejected)
		}
		if st.Issuer != id.WIT.ID.String() {
			return fmt.Errorf("%w: iss %q is not the registering workload %q (a workload registers only statements it issued)", ErrRejected, st.Issuer, id.WIT.ID)
		}
	}
	ks, err := p.keysFor(ctx, st)
	if err != nil {
		return err
	}
	if _, err := st.Verify(ks); err != nil {
		if errors.Is(err, scitt.ErrKeyNotFound) {
			return fmt.Errorf("%w: %w", ErrUnknownKey, err)
		}
		return err
	}
	return nil
}

// keysFor resolves the keys a statement may be verified with.
func (p *Policy) keysFor(ctx context.Context, st *scitt.Statement) (keys.Set, error) {
	if st.WIT != "" {
		if len(p.bundles) == 0 {
			return nil, fmt.Errorf("%w: statements bound to a Workload Identity Token are not accepted by this service", ErrRejected)
		}
		ks, err := witstatement.KeyForRegistration(st, p.bundles, time.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUntrustedIssuer, err)
		}
		return ks, nil
	}
	// The kid-matching rule of package keys: keys the kid names, else every
	// key trusted for this issuer (a wrong one then fails the signature).
	var issuerKeys keys.Set
	var otherIssuerNamed bool
	for _, e := range p.registry {
		if e.issuer != "" && e.issuer != st.Issuer {
			otherIssuerNamed = otherIssuerNamed || e.keys.Names(st.KID) && len(st.KID) > 0
			continue
		}
		issuerKeys = append(issuerKeys, e.keys...)
	}
	switch {
	case len(issuerKeys) > 0:
		if !issuerKeys.Names(st.KID) && otherIssuerNamed {
			return nil, fmt.Errorf("%w: key %x is not trusted for issuer %q", ErrUntrustedIssuer, st.KID, st.Issuer)
		}
		return issuerKeys.Lookup(st.KID), nil
	default:
		return nil, fmt.Errorf("%w: %q is not in the trust registry", ErrUntrustedIssuer, st.Issuer)
	}
}
