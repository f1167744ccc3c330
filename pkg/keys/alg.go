package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"
)

// Algorithm is a signature algorithm Trustfabric knows, with its COSE and JOSE
// identifiers and where it may be used. It is the project's one algorithm
// table: every name, COSE label or JWS "alg" is mapped through it.
type Algorithm struct {
	// Name is the JOSE name ("ES256", "EdDSA"), also used in configuration
	// files and CLI flags.
	Name string
	// COSE is the IANA COSE algorithm identifier.
	COSE cose.Algorithm
	// JOSE is the JWS "alg" value.
	JOSE jose.SignatureAlgorithm
	// Statement reports whether Signed Statements and receipts may use it
	// (design §2.1: ES256, ES384, ES512, PS256, EdDSA).
	Statement bool
	// WIT reports whether the SPIFFE WIT-SVID profile allows it for WIT
	// signatures and cnf keys (RS, ES and PS families; no EdDSA).
	WIT bool
}

// table is the algorithm table. Order is the preference order of listings.
var table = []Algorithm{
	{Name: "ES256", COSE: cose.AlgorithmES256, JOSE: jose.ES256, Statement: true, WIT: true},
	{Name: "ES384", COSE: cose.AlgorithmES384, JOSE: jose.ES384, Statement: true, WIT: true},
	{Name: "ES512", COSE: cose.AlgorithmES512, JOSE: jose.ES512, Statement: true, WIT: true},
	{Name: "PS256", COSE: cose.AlgorithmPS256, JOSE: jose.PS256, Statement: true, WIT: true},
	{Name: "PS384", COSE: cose.AlgorithmPS384, JOSE: jose.PS384, WIT: true},
	{Name: "PS512", COSE: cose.AlgorithmPS512, JOSE: jose.PS512, WIT: true},
	{Name: "RS256", COSE: cose.AlgorithmRS256, JOSE: jose.RS256, WIT: true},
	{Name: "RS384", COSE: cose.AlgorithmRS384, JOSE: jose.RS384, WIT: true},
	{Name: "RS512", COSE: cose.AlgorithmRS512, JOSE: jose.RS512, WIT: true},
	{Name: "EdDSA", COSE: cose.AlgorithmEdDSA, JOSE: jose.EdDSA, Statement: true},
}

// StatementAlgorithmNames is the human-readable list of the statement
// allow-list, for error messages and flag help.
var StatementAlgorithmNames = names(func(a Algorithm) bool { return a.Statement })

// StatementAlgorithms returns the statement allow-list, in table order.
func StatementAlgorithms() []Algorithm {
	var out []Algorithm
	for _, a := range table {
		if a.Statement {
			out = append(out, a)
		}
	}
	return out
}

// ParseAlgorithm returns the algorithm of a JOSE name (case-sensitive, as
// JWS requires; "Ed25519" is accepted for EdDSA).
func ParseAlgorithm(name string) (Algorithm, error) {
	if name == "Ed25519" {
		name = "EdDSA"
	}
	for _, a := range table {
		if a.Name == name {
			return a, nil
		}
	}
	return Algorithm{}, fmt.Errorf("%w: %q (known: %s)", ErrUnsupportedAlgorithm, name, names(func(Algorithm) bool { return true }))
}

// ParseStatementAlgorithm is ParseAlgorithm restricted to the statement
// allow-list.
func ParseStatementAlgorithm(name string) (cose.Algorithm, error) {
	a, err := ParseAlgorithm(name)
	if err == nil && !a.Statement {
		err = fmt.Errorf("%w: %q is not allowed for statements", ErrUnsupportedAlgorithm, name)
	}
	if err != nil {
		return 0, fmt.Errorf("%w (allowed: %s)", err, StatementAlgorithmNames)
	}
	return a.COSE, nil
}

// AlgorithmOfCOSE looks up a COSE algorithm identifier.
func AlgorithmOfCOSE(alg cose.Algorithm) (Algorithm, bool) {
	for _, a := range table {
		if a.COSE == alg {
			return a, true
		}
	}
	return Algorithm{}, false
}

// AlgorithmOfJOSE looks up a JWS "alg" value.
func AlgorithmOfJOSE(alg jose.SignatureAlgorithm) (Algorithm, bool) {
	for _, a := range table {
		if a.JOSE == alg {
			return a, true
		}
	}
	return Algorithm{}, false
}

// StatementAllowed reports whether alg is on the statement allow-list.
func StatementAllowed(alg cose.Algorithm) bool {
	a, ok := AlgorithmOfCOSE(alg)
	return ok && a.Statement
}

// WITAlgorithms returns the JWS algorithms the WIT-SVID profile allows.
func WITAlgorithms() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, a := range table {
		if a.WIT {
			out = append(out, a.JOSE)
		}
	}
	return out
}

func names(keep func(Algorithm) bool) string {
	var out []string
	for _, a := range table {
		if keep(a) {
			out = append(out, a.Name)
		}
	}
	return strings.Join(out, ", ")
}

// NaturalAlgorithm returns the statement algorithm a public key is used with
// when nothing else says: ES256/ES384/ES512 by curve, EdDSA, PS256 for RSA
// (2048 bits at least).
func NaturalAlgorithm(pub crypto.PublicKey) (cose.Algorithm, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return cose.AlgorithmES256, nil
		case elliptic.P384():
			return cose.AlgorithmES384, nil
		case elliptic.P521():
			return cose.AlgorithmES512, nil
		}
		return 0, fmt.Errorf("%w: unsupported elliptic curve %s", ErrInvalidKey, p.Curve.Params().Name)
	case ed25519.PublicKey:
		return cose.AlgorithmEdDSA, nil
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return 0, fmt.Errorf("%w: RSA key of %d bits is too short (2048 at least)", ErrInvalidKey, p.N.BitLen())
		}
		return cose.AlgorithmPS256, nil
	}
	return 0, fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, pub)
}

// Fits reports whether the algorithm can be used with the public key's type,
// curve and size (any family member for RSA keys of 2048 bits or more).
func (a Algorithm) Fits(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		want := map[cose.Algorithm]elliptic.Curve{cose.AlgorithmES256: elliptic.P256(), cose.AlgorithmES384: elliptic.P384(), cose.AlgorithmES512: elliptic.P521()}[a.COSE]
		if want == nil || p.Curve != want {
			return fmt.Errorf("%w: %s cannot be used with an ECDSA %s key", ErrUnsupportedAlgorithm, a.Name, p.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if a.Name[0] != 'R' && a.Name[0] != 'P' {
			return fmt.Errorf("%w: %s cannot be used with an RSA key", ErrUnsupportedAlgorithm, a.Name)
		}
		if p.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key of %d bits is too short (2048 at least)", ErrInvalidKey, p.N.BitLen())
		}
	case ed25519.PublicKey:
		if a.COSE != cose.AlgorithmEdDSA {
			return fmt.Errorf("%w: %s cannot be used with an Ed25519 key", ErrUnsupportedAlgorithm, a.Name)
		}
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, pub)
	}
	return nil
}

// CheckStatementAlgorithm reports whether alg is on the statement allow-list
// and is the natural algorithm of pub (so that an RSA key cannot be used with
// RS256 or a P-384 key with ES256: no algorithm confusion).
func CheckStatementAlgorithm(alg cose.Algorithm, pub crypto.PublicKey) error {
	if !StatementAllowed(alg) {
		return fmt.Errorf("%w: %v is not allowed (allowed: %s)", ErrUnsupportedAlgorithm, alg, StatementAlgorithmNames)
	}
	natural, err := NaturalAlgorithm(pub)
	if err != nil {
		return err
	}
	if natural != alg {
		return fmt.Errorf("%w: %v cannot be used with this %s key", ErrUnsupportedAlgorithm, alg, Describe(pub))
	}
	return nil
}

// Describe names a public key's type for messages: "ECDSA P-256",
// "Ed25519", "RSA-3072".
func Describe(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + p.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", p.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}
