package wimse

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/exp/bundle/witbundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

const testTD = "ci.example.org"

type fixture struct {
	issuer   *keys.PrivateKey
	workload *keys.PrivateKey
	bundle   *Bundle
	id       Identifier
	wit      string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	iss, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewSPIFFEIdentifier(testTD, "github", "acme", "widgets", ".github", "workflows", "release.yml", "refs", "heads", "feature", "x@y")
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{TrustDomain: testTD, Keys: []jose.JSONWebKey{iss.PublicJWK()}}
	wit, err := MintWIT(iss, WITClaims{
		Subject: id, Issuer: "https://id.example.org", Expiry: time.Now().Add(10 * time.Minute),
		Key:   wl.PublicJWK(),
		Extra: map[string]any{"https://trustfabric.dev/ci": map[string]any{"repository_id": "42"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{issuer: iss, workload: wl, bundle: b, id: id, wit: wit}
}

func TestWITRoundTrip(t *testing.T) {
	f := newFixture(t)
	w, err := ParseWIT(f.wit, Bundles{f.bundle})
	if err != nil {
		t.Fatal(err)
	}
	if w.ID != f.id || w.Issuer != "https://id.example.org" || w.KeyID != f.issuer.KeyID() || w.JTI == "" {
		t.Errorf("parsed WIT = %+v", w)
	}
	if w.Key.Algorithm != "ES256" {
		t.Errorf("cnf.jwk alg = %q", w.Key.Algorithm)
	}
	if !strings.Contains(string(w.Claims["https://trustfabric.dev/ci"]), `"42"`) {
		t.Errorf("CI claims lost: %s", w.Claims["https://trustfabric.dev/ci"])
	}
}

// The interop bar: our WITs pass go-spiffe's WIT-SVID validator against the
// bundle we publish (design §2.4).
func TestWITPassesGoSpiffeWITSVID(t *testing.T) {
	f := newFixture(t)
	raw, err := f.bundle.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"use":"wit-svid"`) {
		t.Fatalf("bundle lacks use wit-svid: %s", raw)
	}
	wb, err := witbundle.Parse(spiffeid.RequireTrustDomainFromString(testTD), raw)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := witsvid.ParseAndValidate(f.wit, wb)
	if err != nil {
		t.Fatalf("go-spiffe rejects our WIT: %v", err)
	}
	if svid.ID.String() != f.id.String() || svid.KeyID != f.issuer.KeyID() {
		t.Errorf("svid = %v %v", svid.ID, svid.KeyID)
	}
}

func TestWITRejections(t *testing.T) {
	f := newFixture(t)
	other, _ := keys.Generate(cose.AlgorithmES256)
	craft := func(alg jose.SignatureAlgorithm, key any, typ string, kid string, claims map[string]any) string {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cnf := json.RawMessage(mustJSON(t, f.workload.PublicJWK()))
	base := func() map[string]any {
		return map[string]any{"sub": f.id.String(), "exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(), "cnf": map[string]any{"jwk": cnf}}
	}
	withAud := base()
	withAud["aud"] = "https://svc.example"
	expired := base()
	expired["exp"] = time.Now().Add(-2 * time.Minute).Unix()
	future := base()
	future["nbf"] = time.Now().Add(5 * time.Minute).Unix()
	otherTD := base()
	otherTD["sub"] = "spiffe://evil.example/x"
	noCnf := base()
	delete(noCnf, "cnf")
	pubBytes := mustJSON(t, f.issuer.PublicJWK())
	hs := craft(jose.HS256, pubBytes, TypeWIT, f.issuer.KeyID(), base())
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"wit+jwt","kid":"`+f.issuer.KeyID()+`"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(mustJSON(t, base())) + "."
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"aud present", craft(jose.ES256, f.issuer.Signer, TypeWIT, f.issuer.KeyID(), withAud), ErrAudience},
		{"expired", craft(jose.ES256, f.issuer.Signer, TypeWIT, f.issuer.KeyID(), expired), ErrExpired},
		{"not yet valid", craft(jose.ES256, f.issuer.Signer, TypeWIT, f.issuer.KeyID(), future), ErrNotYetValid},
		{"wrong typ", craft(jose.ES256, f.issuer.Signer, "JWT", f.issuer.KeyID(), base()), ErrWrongType},
		{"unknown kid", craft(jose.ES256, other.Signer, TypeWIT, other.KeyID(), base()), ErrKeyNotFound},
		{"signed by another key under our kid", craft(jose.ES256, other.Signer, TypeWIT, f.issuer.KeyID(), base()), ErrBadSignature},
		{"untrusted trust domain", craft(jose.ES256, f.issuer.Signer, TypeWIT, f.issuer.KeyID(), otherTD), ErrUntrustedDomain},
		{"no cnf", craft(jose.ES256, f.issuer.Signer, TypeWIT, f.issuer.KeyID(), noCnf), ErrMalformed},
		{"alg none", none, ErrUnsupportedAlgorithm},
		{"HS256 with the public key", hs, ErrUnsupportedAlgorithm},
		{"oversize", strings.Repeat("a", MaxTokenSize+1), ErrMalformed},
		{"garbage", "a.b.c", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWIT(tt.token, Bundles{f.bundle})
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseWIT error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWITIssuerPinnedByBundle(t *testing.T) {
	f := newFixture(t)
	b := *f.bundle
	b.Issuers = []string{"https://other.example"}
	if _, err := ParseWIT(f.wit, Bundles{&b}); !errors.Is(err, ErrUntrustedDomain) {
		t.Fatalf("err = %v, want ErrUntrustedDomain", err)
	}
	b.Issuers = []string{"https://id.example.org"}
	if _, err := ParseWIT(f.wit, Bundles{&b}); err != nil {
		t.Fatal(err)
	}
}

func TestWITValidityAtTime(t *testing.T) {
	f := newFixture(t)
	if _, err := ParseWIT(f.wit, Bundles{f.bundle}, WithTime(time.Now().Add(20*time.Minute))); !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
}

func TestMintWITRefusesEdDSAKey(t *testing.T) {
	f := newFixture(t)
	k := f.workload.PublicJWK()
	k.Algorithm = "EdDSA"
	_, err := MintWIT(f.issuer, WITClaims{Subject: f.id, Expiry: time.Now().Add(time.Minute), Key: k})
	if !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("err = %v, want ErrUnsupportedAlgorithm", err)
	}
}

func TestParseBundle(t *testing.T) {
	f := newFixture(t)
	raw, _ := f.bundle.Marshal()
	b, err := ParseBundle(testTD, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Key(f.issuer.KeyID()); !ok {
		t.Fatal("kid lost in round trip")
	}
	priv := mustJSON(t, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{f.issuer.PrivateJWK()}})
	if _, err := ParseBundle(testTD, priv); !errors.Is(err, ErrMalformed) {
		t.Fatalf("private key bundle: err = %v", err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseWIT(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.wit)
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		w, err := ParseWIT(tok, Bundles{fx.bundle})
		if err == nil && w.Raw != tok {
			t.Fatal("accepted token not kept verbatim")
		}
	})
}
