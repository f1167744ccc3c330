package wimse

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// Errors of WIT-bound statements (design §2.1, issue 4 item 5).
var (
	// ErrNotWITBound: the statement has no "wit" protected header.
	ErrNotWITBound = errors.New("statement is not bound to a WIT")
	// ErrIssuerMismatch: the statement's iss is not the WIT's sub, or the
	// signing key is not the WIT's confirmation key.
	ErrIssuerMismatch = errors.New("statement issuer is not the WIT subject")
)

// StatementIssuer reads a WIT without verifying it (the signer holds it from
// the identity server) and returns the iss a statement signed with it must
// carry: the WIT's sub. It checks that pub is the WIT's cnf.jwk, so that a
// key/WIT mix-up fails at signing time instead of at every verifier.
func StatementIssuer(wit string, pub crypto.PublicKey) (Identifier, error) {
	tok, _, err := parseCompact(wit, Algorithms)
	if err != nil {
		return Identifier{}, fmt.Errorf("WIT: %w", err)
	}
	var c witHeaderClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return Identifier{}, fmt.Errorf("WIT: %w: %w", ErrMalformed, err)
	}
	id, err := ParseIdentifier(c.Subject)
	if err != nil {
		return Identifier{}, fmt.Errorf("WIT: sub: %w", err)
	}
	if c.Cnf == nil {
		return Identifier{}, fmt.Errorf("WIT: %w: no cnf.jwk", ErrMalformed)
	}
	cnf, err := parseConfirmationKey(c.Cnf.JWK)
	if err != nil {
		return Identifier{}, fmt.Errorf("WIT: %w", err)
	}
	if !sameJWKKey(cnf, pub) {
		return Identifier{}, fmt.Errorf("%w: the key is not the WIT's confirmation key", ErrIssuerMismatch)
	}
	return id, nil
}

func sameJWKKey(k jose.JSONWebKey, pub crypto.PublicKey) bool {
	a, err1 := k.Thumbprint(crypto.SHA256)
	b, err2 := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// StatementOption configures VerifyStatement.
type StatementOption func(*statementOptions)

type statementOptions struct {
	at          time.Time
	receiptKeys keys.Set
	leaf        scitt.LeafConvention
	preimage    []byte
	hasPreimage bool
}

// AtTime checks the WIT's validity at t, e.g. the registration time of a
// receipt the caller verified, or now for a service registering the
// statement. Default: see VerifyStatement.
func AtTime(t time.Time) StatementOption { return func(o *statementOptions) { o.at = t } }

// WithReceiptKeys lets VerifyStatement take the registration time from the
// first embedded receipt whose inclusion proof verifies under keys. Default:
// receipts are not consulted.
func WithReceiptKeys(keys keys.Set, leaf scitt.LeafConvention) StatementOption {
	return func(o *statementOptions) { o.receiptKeys, o.leaf = keys, leaf }
}

// WithStatementPreimage checks the statement's payload against the preimage.
func WithStatementPreimage(p []byte) StatementOption {
	return func(o *statementOptions) { o.preimage, o.hasPreimage = p, true }
}

// StatementIdentity is a verified WIT-bound statement.
type StatementIdentity struct {
	Statement *scitt.Statement
	WIT       *WIT
	// CheckedAt is the time the WIT was found valid at, and Source where that
	// time came from: "option", "receipt", "iat" or "now".
	CheckedAt time.Time
	Source    string
	Result    *scitt.Result
}

// VerifyStatement verifies a Signed Statement signed with a WIT's key
// (issue 4 item 5): the WIT in the "wit" protected header against the trusted
// bundles, the statement's iss equal to the WIT's sub, the signature under
// cnf.jwk (with the statement's alg equal to cnf.jwk's alg), and the WIT valid
// at the registration time: AtTime when given, else a verified receipt's iat
// (WithReceiptKeys), else the statement's iat, else now.
func VerifyStatement(statement []byte, bundles BundleSource, opts ...StatementOption) (*StatementIdentity, error) {
	var o statementOptions
	for _, opt := range opts {
		opt(&o)
	}
	s, err := scitt.ParseStatement(statement)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if s.WIT == "" {
		return nil, fmt.Errorf("statement: %w", ErrNotWITBound)
	}
	at, source := o.at, "option"
	if at.IsZero() && len(o.receiptKeys) > 0 {
		for _, raw := range s.Receipts {
			r, err := scitt.ParseReceipt(raw)
			if err != nil || r.IssuedAt.IsZero() {
				continue
			}
			if _, err := r.VerifyInclusion(statement, o.receiptKeys, o.leaf); err == nil {
				at, source = r.IssuedAt, "receipt"
				break
			}
		}
	}
	if at.IsZero() && !s.IssuedAt.IsZero() {
		at, source = s.IssuedAt, "iat"
	}
	if at.IsZero() {
		at, source = time.Now(), "now"
	}
	wit, err := ParseWIT(s.WIT, bundles, WithTime(at))
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if s.Issuer != wit.ID.String() {
		return nil, fmt.Errorf("statement: %w: iss %q, WIT sub %q", ErrIssuerMismatch, s.Issuer, wit.ID)
	}
	alg, err := coseAlg(jose.SignatureAlgorithm(wit.Key.Algorithm))
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if s.Alg != alg {
		return nil, fmt.Errorf("statement: %w: alg %v, cnf.jwk alg %s", ErrUnsupportedAlgorithm, s.Alg, wit.Key.Algorithm)
	}
	pk := &keys.PublicKey{Key: wit.Key.Key, Alg: alg}
	var vopts []scitt.VerifyOption
	if o.hasPreimage {
		vopts = append(vopts, scitt.WithPreimage(o.preimage))
	}
	res, err := s.Verify(keys.Set{pk}, vopts...)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	return &StatementIdentity{Statement: s, WIT: wit, CheckedAt: at, Source: source, Result: res}, nil
}

func coseAlg(a jose.SignatureAlgorithm) (cose.Algorithm, error) {
	switch a {
	case jose.ES256:
		return cose.AlgorithmES256, nil
	case jose.ES384:
		return cose.AlgorithmES384, nil
	case jose.ES512:
		return cose.AlgorithmES512, nil
	case jose.PS256:
		return cose.AlgorithmPS256, nil
	}
	return 0, fmt.Errorf("%w: cnf.jwk alg %s has no statement algorithm", ErrUnsupportedAlgorithm, a)
}
