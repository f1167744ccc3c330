package wimse_test

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// An Identity Server mints a Workload Identity Token binding a workload
// identifier to the workload's public key; a relying party verifies it
// against the trust domain's bundle (the server's public keys) at a given
// time.
func ExampleMintWIT() {
	server, err := keys.Generate(cose.AlgorithmES256) // the Identity Server's key
	if err != nil {
		panic(err)
	}
	workload, err := keys.Generate(cose.AlgorithmES256) // the workload's key, bound by cnf.jwk
	if err != nil {
		panic(err)
	}
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	wit, err := wimse.MintWIT(server, wimse.WITClaims{
		Subject:  wimse.RequireIdentifier("spiffe://ci.example.org/github/acme/widgets"),
		Issuer:   "https://id.ci.example.org",
		IssuedAt: issued,
		Expiry:   issued.Add(time.Hour),
		Key:      workload.PublicJWK(),
	})
	if err != nil {
		panic(err)
	}

	bundle := &wimse.Bundle{TrustDomain: "ci.example.org", Keys: []jose.JSONWebKey{server.PublicJWK()}}
	w, err := wimse.ParseWIT(wit, wimse.Bundles{bundle}, wimse.WithTime(issued.Add(10*time.Minute)))
	if err != nil {
		panic(err)
	}
	fmt.Println("workload:", w.ID)
	fmt.Println("trust domain:", w.ID.TrustDomain())
	fmt.Println("expires:", w.Expiry.UTC().Format(time.RFC3339))
	pub := workload.PublicJWK()
	want, _ := pub.Thumbprint(crypto.SHA256)
	got, _ := w.Key.Thumbprint(crypto.SHA256)
	fmt.Println("bound to the workload key:", len(got) > 0 && bytes.Equal(got, want))

	// After exp (and the leeway), the same token is refused.
	_, err = wimse.ParseWIT(wit, wimse.Bundles{bundle}, wimse.WithTime(issued.Add(2*time.Hour)))
	fmt.Println("expired:", errors.Is(err, wimse.ErrExpired))
	// Another trust domain's bundle does not vouch for it.
	other := &wimse.Bundle{TrustDomain: "other.example.org", Keys: []jose.JSONWebKey{server.PublicJWK()}}
	_, err = wimse.ParseWIT(wit, wimse.Bundles{other}, wimse.WithTime(issued))
	fmt.Println("untrusted domain:", errors.Is(err, wimse.ErrUntrustedDomain))
	// Output:
	// workload: spiffe://ci.example.org/github/acme/widgets
	// trust domain: ci.example.org
	// expires: 2026-03-01T13:00:00Z
	// bound to the workload key: true
	// expired: true
	// untrusted domain: true
}
