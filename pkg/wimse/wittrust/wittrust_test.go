package wittrust

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

func TestVerifyWIT(t *testing.T) {
	iss, _ := keys.Generate(cose.AlgorithmES256)
	sk, _ := keys.Generate(cose.AlgorithmES256)
	wk, _ := keys.NewPrivateKey(sk.Signer)
	id := wimse.RequireIdentifier("spiffe://ci.example.org/github/acme/widgets")
	wit, err := wimse.MintWIT(iss, wimse.WITClaims{Subject: id, Expiry: time.Now().Add(5 * time.Minute), Key: wk.PublicJWK()})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(issuer string) *scitt.Statement {
		b, err := scitt.SignStatement(context.Background(), sk, scitt.Claims{Issuer: issuer, Subject: "sha256:00", IssuedAt: time.Now()}, []byte("x"), scitt.WithWIT(wit))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := scitt.ParseStatement(b)
		return st
	}
	trusted := &Verifier{Bundles: wimse.Bundles{{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{iss.PublicJWK()}}}}
	st := sign(id.String())
	ks, err := trusted.VerifyWIT(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Verify(ks); err != nil {
		t.Fatalf("statement does not verify under the returned key: %v", err)
	}
	other, _ := keys.Generate(cose.AlgorithmES256)
	untrusted := &Verifier{Bundles: wimse.Bundles{{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{other.PublicJWK()}}}}
	if _, err := untrusted.VerifyWIT(context.Background(), st); !errors.Is(err, transparency.ErrUntrustedIssuer) || !errors.Is(err, wimse.ErrKeyNotFound) {
		t.Fatalf("untrusted bundle: err = %v", err)
	}
	if _, err := trusted.VerifyWIT(context.Background(), sign("spiffe://ci.example.org/other")); !errors.Is(err, wimse.ErrIssuerMismatch) {
		t.Fatalf("iss mismatch: err = %v", err)
	}
	late := &Verifier{Bundles: trusted.Bundles, Now: func() time.Time { return time.Now().Add(time.Hour) }}
	if _, err := late.VerifyWIT(context.Background(), st); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("expired at registration: err = %v", err)
	}
}
