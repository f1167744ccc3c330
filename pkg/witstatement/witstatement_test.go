package witstatement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// witSigner returns a scitt key, a WIT bound to it, and the issuer bundle.
func witSigner(t *testing.T, lifetime time.Duration) (*keys.PrivateKey, string, *wimse.Bundle, wimse.Identifier) {
	t.Helper()
	iss, _ := keys.Generate(cose.AlgorithmES256)
	sk, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := keys.NewPrivateKey(sk.Signer)
	if err != nil {
		t.Fatal(err)
	}
	id := wimse.RequireIdentifier("spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main")
	wit, err := wimse.MintWIT(iss, wimse.WITClaims{Subject: id, Issuer: "https://id.example.org", Expiry: time.Now().Add(lifetime), Key: wk.PublicJWK()})
	if err != nil {
		t.Fatal(err)
	}
	return sk, wit, &wimse.Bundle{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{iss.PublicJWK()}}, id
}

func signWithWIT(t *testing.T, key *keys.PrivateKey, wit, iss string, iat time.Time) []byte {
	t.Helper()
	st, err := scitt.SignStatement(context.Background(), key, scitt.Claims{Issuer: iss, Subject: "sha256:abc", IssuedAt: iat},
		[]byte(`{"_type":"https://in-toto.io/Statement/v1"}`), scitt.WithWIT(wit))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestVerifyStatementWITBound(t *testing.T) {
	key, wit, b, id := witSigner(t, 10*time.Minute)
	iss, err := Issuer(wit, key.Signer.Public())
	if err != nil || iss != id {
		t.Fatalf("StatementIssuer = %v, %v", iss, err)
	}
	st := signWithWIT(t, key, wit, iss.String(), time.Now())
	got, err := Verify(st, wimse.Bundles{b}, WithPreimage([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if got.WIT.ID != id || got.Source != "iat" || !got.Result.OK() {
		t.Fatalf("got %+v", got)
	}
	// A verifier that does not trust the identity server refuses it.
	other, _ := keys.Generate(cose.AlgorithmES256)
	if _, err := Verify(st, wimse.Bundles{{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{other.PublicJWK()}}}); !errors.Is(err, wimse.ErrKeyNotFound) {
		t.Fatalf("untrusted bundle: err = %v, want wimse.ErrKeyNotFound", err)
	}
	if _, err := Verify(st, wimse.Bundles{}); !errors.Is(err, wimse.ErrUntrustedDomain) {
		t.Fatalf("no bundle: err = %v, want wimse.ErrUntrustedDomain", err)
	}
}

func TestVerifyStatementIssuerMismatch(t *testing.T) {
	key, wit, b, _ := witSigner(t, 10*time.Minute)
	st := signWithWIT(t, key, wit, "spiffe://ci.example.org/someone/else", time.Now())
	if _, err := Verify(st, wimse.Bundles{b}); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err = %v, want ErrIssuerMismatch", err)
	}
}

func TestVerifyStatementSignedByOtherKey(t *testing.T) {
	_, wit, b, id := witSigner(t, 10*time.Minute)
	other, _ := keys.Generate(cose.AlgorithmES256)
	if _, err := Issuer(wit, other.Signer.Public()); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("StatementIssuer with another key: err = %v", err)
	}
	st := signWithWIT(t, other, wit, id.String(), time.Now())
	if _, err := Verify(st, wimse.Bundles{b}); !errors.Is(err, scitt.ErrBadSignature) && !errors.Is(err, scitt.ErrKeyNotFound) {
		t.Fatalf("err = %v, want a signature failure", err)
	}
}

func TestVerifyStatementWITExpiredAtIAT(t *testing.T) {
	key, wit, b, id := witSigner(t, 2*time.Minute)
	st := signWithWIT(t, key, wit, id.String(), time.Now().Add(time.Hour))
	if _, err := Verify(st, wimse.Bundles{b}); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("err = %v, want wimse.ErrExpired", err)
	}
}

func TestVerifyStatementRegistrationTimeFromReceipt(t *testing.T) {
	key, wit, b, id := witSigner(t, 10*time.Minute)
	st := signWithWIT(t, key, wit, id.String(), time.Now())
	ts, _ := keys.Generate(cose.AlgorithmES256)
	s, _ := scitt.ParseStatement(st)
	reg := s.Registered()
	entry := sha256.Sum256(reg)
	root := scitt.LeafHash(reg, scitt.LeafIETF)
	// Registered 5 minutes after signing; still within the WIT's lifetime.
	regTime := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	rc, err := scitt.IssueReceipt(context.Background(), ts, scitt.ReceiptClaims{Issuer: "https://ts.example", Subject: hex.EncodeToString(entry[:]), IssuedAt: regTime},
		scitt.InclusionProof{TreeSize: 1, LeafIndex: 0}, root)
	if err != nil {
		t.Fatal(err)
	}
	transparent, err := scitt.AddReceipt(st, rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(transparent, wimse.Bundles{b}, WithReceipts(keys.Set{ts.Public()}, scitt.LeafIETF))
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "receipt" || !got.CheckedAt.Equal(regTime) {
		t.Fatalf("checked at %s from %s", got.CheckedAt, got.Source)
	}
	// Registered after the WIT expired: refused.
	late := time.Now().Add(time.Hour).Truncate(time.Second)
	rc2, _ := scitt.IssueReceipt(context.Background(), ts, scitt.ReceiptClaims{Issuer: "https://ts.example", Subject: "x", IssuedAt: late},
		scitt.InclusionProof{TreeSize: 1, LeafIndex: 0}, root)
	t2, _ := scitt.AddReceipt(st, rc2)
	if _, err := Verify(t2, wimse.Bundles{b}, WithReceipts(keys.Set{ts.Public()}, scitt.LeafIETF)); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("late registration: err = %v, want wimse.ErrExpired", err)
	}
}

func TestVerifyStatementWithoutWIT(t *testing.T) {
	key, _ := keys.Generate(cose.AlgorithmES256)
	st, _ := scitt.SignStatement(context.Background(), key, scitt.Claims{Issuer: "x", Subject: "y"}, []byte("p"))
	if _, err := Verify(st, wimse.Bundles{}); !errors.Is(err, ErrNotWITBound) {
		t.Fatalf("err = %v, want ErrNotWITBound", err)
	}
}

// TestVerifyRequiresReceiptWhenServiceKeysGiven: with service keys, a
// statement whose receipts do not verify under them is refused, instead of
// being checked at the iat the signer chose (the rule `statement verify
// --service-key` enforced alone before).
func TestVerifyRequiresReceiptWhenServiceKeysGiven(t *testing.T) {
	key, wit, b, id := witSigner(t, 10*time.Minute)
	st := signWithWIT(t, key, wit, id.String(), time.Now())
	ts, _ := keys.Generate(cose.AlgorithmES256)
	if _, err := Verify(st, wimse.Bundles{b}, WithReceipts(keys.Set{ts.Public()}, scitt.LeafIETF)); !errors.Is(err, ErrNoVerifiedReceipt) {
		t.Fatalf("no receipt: err = %v, want ErrNoVerifiedReceipt", err)
	}
	other, _ := keys.Generate(cose.AlgorithmES256)
	s, _ := scitt.ParseStatement(st)
	rc, err := scitt.IssueReceipt(context.Background(), other, scitt.ReceiptClaims{Issuer: "https://other.example", Subject: "x", IssuedAt: time.Now().Truncate(time.Second)},
		scitt.InclusionProof{TreeSize: 1, LeafIndex: 0}, scitt.LeafHash(s.Registered(), scitt.LeafIETF))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := scitt.AddReceipt(st, rc)
	if _, err := Verify(foreign, wimse.Bundles{b}, WithReceipts(keys.Set{ts.Public()}, scitt.LeafIETF)); !errors.Is(err, ErrNoVerifiedReceipt) {
		t.Fatalf("receipt of another service: err = %v, want ErrNoVerifiedReceipt", err)
	}
}

func TestKeyForRegistration(t *testing.T) {
	key, wit, b, id := witSigner(t, 5*time.Minute)
	parse := func(iss string) *scitt.Statement {
		st, err := scitt.ParseStatement(signWithWIT(t, key, wit, iss, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := parse(id.String())
	ks, err := KeyForRegistration(st, wimse.Bundles{b}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Verify(ks); err != nil {
		t.Fatalf("statement does not verify under the returned key: %v", err)
	}
	other, _ := keys.Generate(cose.AlgorithmES256)
	untrusted := wimse.Bundles{{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{other.PublicJWK()}}}
	if _, err := KeyForRegistration(st, untrusted, time.Now()); !errors.Is(err, wimse.ErrKeyNotFound) {
		t.Fatalf("untrusted bundle: err = %v", err)
	}
	if _, err := KeyForRegistration(parse("spiffe://ci.example.org/other"), wimse.Bundles{b}, time.Now()); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("iss mismatch: err = %v", err)
	}
	if _, err := KeyForRegistration(st, wimse.Bundles{b}, time.Now().Add(time.Hour)); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("expired WIT: err = %v", err)
	}
}

// TestEdDSAPartnerDomain: a partner trust domain whose bundle allows EdDSA
// issues a WIT for an Ed25519 workload key; the workload names itself with
// Issuer and its statement verifies (issue 11 item 6).
func TestEdDSAPartnerDomain(t *testing.T) {
	iss, _ := keys.Generate(cose.AlgorithmES256)
	wl, err := keys.Generate(cose.AlgorithmEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	id := wimse.RequireIdentifier("spiffe://partner.example/build/1")
	bundle := &wimse.Bundle{TrustDomain: "partner.example", Keys: []jose.JSONWebKey{iss.PublicJWK()},
		Algorithms: []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}}
	wit := mintWITWithCnf(t, iss, id, wl.PublicJWK())
	got, err := Issuer(wit, wl.Signer.Public())
	if err != nil || got != id {
		t.Fatalf("Issuer = %v, %v", got, err)
	}
	st := signWithWIT(t, wl, wit, id.String(), time.Now())
	if _, err := Verify(st, wimse.Bundles{bundle}); err != nil {
		t.Fatalf("EdDSA statement of an allowing domain: %v", err)
	}
	strict := &wimse.Bundle{TrustDomain: "partner.example", Keys: []jose.JSONWebKey{iss.PublicJWK()}}
	if _, err := Verify(st, wimse.Bundles{strict}); !errors.Is(err, wimse.ErrUnsupportedAlgorithm) {
		t.Fatalf("EdDSA under a default bundle: err = %v, want ErrUnsupportedAlgorithm", err)
	}
}

// mintWITWithCnf signs a WIT by hand (MintWIT refuses EdDSA confirmation keys:
// our own Identity Server never issues them).
func mintWITWithCnf(t *testing.T, iss *keys.PrivateKey, id wimse.Identifier, cnf jose.JSONWebKey) string {
	t.Helper()
	s, err := iss.JOSESigner(wimse.TypeWIT, true, wimse.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(cnf.Public())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(map[string]any{"sub": id.String(), "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "jti": "j1", "cnf": map[string]any{"jwk": json.RawMessage(pub)}}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
