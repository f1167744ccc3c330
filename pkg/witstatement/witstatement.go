// Package witstatement is the home of SCITT Signed Statements signed under a
// WIMSE Workload Identity Token (design.md §2.1, §2.4; style.md §34): the
// statement carries the WIT in its protected "wit" header, its iss is the
// WIT's sub, and it is signed with the WIT's confirmation key (cnf.jwk).
//
// The construct belongs to two specifications, so it lives above both
// pkg/scitt and pkg/wimse, which import neither each other nor this package.
//
// # When is the WIT checked
//
// A WIT lives minutes; a statement is verified for years. The WIT must have
// been valid when the statement was registered, so [Verify] checks it at:
//   - the time given with [AtTime] (the gate passes the registration time its
//     verified receipts prove);
//   - else, with [WithReceipts], the iat of a receipt that verifies under the
//     given Transparency Service keys. A verifying receipt is then required:
//     when none verifies, Verify fails with [ErrNoVerifiedReceipt] instead of
//     falling back to a time the signer chose;
//   - else the statement's own iat, else now.
//
// [KeyForRegistration] is the Transparency Service's side: the WIT must be
// valid now, and the statement may only be verified with its cnf key.
package witstatement

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// Errors of WIT-bound statements. Errors from WIT verification also wrap the
// pkg/wimse sentinel naming the reason, and signature failures pkg/scitt's.
var (
	// ErrNotWITBound: the statement has no "wit" protected header.
	ErrNotWITBound = errors.New("statement is not bound to a WIT")
	// ErrIssuerMismatch: the statement's iss is not the WIT's sub, or the
	// signing key is not the WIT's confirmation key.
	ErrIssuerMismatch = errors.New("statement issuer is not the WIT subject")
	// ErrNoVerifiedReceipt: receipts keys were given, and no receipt of the
	// statement verifies under them.
	ErrNoVerifiedReceipt = errors.New("no receipt verifies under the given service keys")
)

// Issuer reads a WIT without verifying it (the signer holds it from the
// identity server) and returns the iss a statement signed with it must carry:
// the WIT's sub. It checks that pub is the WIT's cnf.jwk, so that a key/WIT
// mix-up fails at signing time instead of at every verifier.
func Issuer(wit string, pub crypto.PublicKey) (wimse.Identifier, error) {
	id, cnf, err := wimse.ParseWITUnverified(wit)
	if err != nil {
		return wimse.Identifier{}, err
	}
	if !sameKey(cnf, pub) {
		return wimse.Identifier{}, fmt.Errorf("%w: the key is not the WIT's confirmation key", ErrIssuerMismatch)
	}
	return id, nil
}

func sameKey(k jose.JSONWebKey, pub crypto.PublicKey) bool {
	a, err1 := k.Thumbprint(crypto.SHA256)
	b, err2 := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// Option configures [Verify].
type Option func(*options) error

type options struct {
	at          time.Time
	receiptKeys keys.Set
	leaf        scitt.LeafConvention
	preimage    []byte
	hasPreimage bool
}

// AtTime checks the WIT's validity at t, e.g. the registration time of a
// receipt the caller verified. Default: see the package doc.
func AtTime(t time.Time) Option {
	return func(o *options) error {
		if t.IsZero() {
			return errors.New("witstatement: AtTime needs a time")
		}
		o.at = t
		return nil
	}
}

// WithReceipts takes the registration time from the first embedded receipt
// whose inclusion proof verifies under the service keys, and requires one
// (ErrNoVerifiedReceipt). Default: receipts are not consulted.
func WithReceipts(service keys.Set, leaf scitt.LeafConvention) Option {
	return func(o *options) error {
		if len(service) == 0 {
			return errors.New("witstatement: WithReceipts needs at least one service key")
		}
		o.receiptKeys, o.leaf = service, leaf
		return nil
	}
}

// WithPreimage checks the statement's payload against the preimage. Default:
// the payload is not checked against anything.
func WithPreimage(p []byte) Option {
	return func(o *options) error { o.preimage, o.hasPreimage = p, true; return nil }
}

// Verified is a verified WIT-bound statement.
type Verified struct {
	Statement *scitt.Statement
	WIT       *wimse.WIT
	// CheckedAt is the time the WIT was found valid at, and Source where that
	// time came from: "option", "receipt", "iat" or "now".
	CheckedAt time.Time
	Source    string
	Result    *scitt.Result
}

// Verify verifies a Signed Statement signed with a WIT's key: the WIT in the
// "wit" protected header against the trusted bundles at the time the package
// doc describes, the statement's iss equal to the WIT's sub, and the
// signature under cnf.jwk with the statement's alg equal to cnf.jwk's alg.
func Verify(statement []byte, bundles wimse.BundleSource, opts ...Option) (*Verified, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
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
		if at.IsZero() {
			return nil, fmt.Errorf("statement: %w (of %d receipts), so the WIT cannot be checked at a registration time", ErrNoVerifiedReceipt, len(s.Receipts))
		}
	}
	if at.IsZero() && !s.IssuedAt.IsZero() {
		at, source = s.IssuedAt, "iat"
	}
	if at.IsZero() {
		at, source = time.Now(), "now"
	}
	wit, key, err := witKey(s, bundles, at)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	var vopts []scitt.VerifyOption
	if o.hasPreimage {
		vopts = append(vopts, scitt.WithPreimage(o.preimage))
	}
	res, err := s.Verify(keys.Set{key}, vopts...)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	return &Verified{Statement: s, WIT: wit, CheckedAt: at, Source: source, Result: res}, nil
}

// KeyForRegistration is the Transparency Service's check of a WIT-bound
// statement (design §3): the WIT valid at now against the trusted bundles, its
// sub equal to the statement's iss, and the statement's alg equal to cnf.jwk's.
// It returns the one key the statement may be verified with.
func KeyForRegistration(st *scitt.Statement, bundles wimse.BundleSource, now time.Time) (keys.Set, error) {
	if st.WIT == "" {
		return nil, ErrNotWITBound
	}
	_, key, err := witKey(st, bundles, now)
	if err != nil {
		return nil, err
	}
	return keys.Set{key}, nil
}

func witKey(s *scitt.Statement, bundles wimse.BundleSource, at time.Time) (*wimse.WIT, *keys.PublicKey, error) {
	wit, err := wimse.ParseWIT(s.WIT, bundles, wimse.WithTime(at))
	if err != nil {
		return nil, nil, err
	}
	if s.Issuer != wit.ID.String() {
		return nil, nil, fmt.Errorf("%w: iss %q, WIT sub %q", ErrIssuerMismatch, s.Issuer, wit.ID)
	}
	a, ok := keys.AlgorithmOfJOSE(jose.SignatureAlgorithm(wit.Key.Algorithm))
	if !ok || !a.Statement {
		return nil, nil, fmt.Errorf("%w: cnf.jwk alg %s has no statement algorithm", wimse.ErrUnsupportedAlgorithm, wit.Key.Algorithm)
	}
	if s.Alg != a.COSE {
		return nil, nil, fmt.Errorf("%w: statement alg %v, cnf.jwk alg %s", wimse.ErrUnsupportedAlgorithm, cose.Algorithm(s.Alg), wit.Key.Algorithm)
	}
	return wit, &keys.PublicKey{Key: wit.Key.Key, Alg: a.COSE}, nil
}
