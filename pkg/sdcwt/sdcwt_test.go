package sdcwt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

func draft(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "draft", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDraftDisclosureHash: the draft's first disclosure hashes, as its
// example tokens hash it (over the bstr encoding), to the digest in their
// payload (kbt.edn: h'af375dc3…'); the separate first-blinded-hash example
// is over the content only, and is recorded here as what we do not do.
func TestDraftDisclosureHash(t *testing.T) {
	d, err := ParseDisclosure(draft(t, "first-disclosure.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(d.Digest()), "af375dc3fba1d082448642c00be7b2f7bb05c9d8fb61cfc230ddfdfb4616a693"; got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
	content := sha256.Sum256(d.Raw)
	if got, want := hex.EncodeToString(content[:]), strings.TrimSpace(string(draft(t, "first-disclosure.sha256"))); got != want {
		t.Errorf("content hash %s, want the draft's first-blinded-hash %s", got, want)
	}
	if d.Key != int64(501) || d.Value != "ABCD-123456" {
		t.Errorf("disclosure %+v", d)
	}
}

// TestDraftKBT: the draft's SD-KBT example verifies with its issuer key (ES384)
// and holder cnf key, and discloses exactly what the example chose.
func TestDraftKBT(t *testing.T) {
	ks, err := keys.ParsePublic(draft(t, "issuer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	at := func() time.Time { return time.Unix(1725244237+5, 0) }
	res, err := Verify(draft(t, "kbt.cbor"), ks, WithClock(at), WithAudience("https://verifier.example/app"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Claims["501"] != "ABCD-123456" || res.Claims["iss"] != "https://issuer.example" {
		t.Errorf("claims %v", res.Claims)
	}
	dates, _ := res.Claims["502"].([]any)
	if len(dates) != 2 {
		t.Errorf("inspection_dates %v: want the disclosed one and the plain one", dates)
	}
	loc, _ := res.Claims["503"].(map[string]any)
	if loc["region"] != "ca" || loc["country"] != "us" {
		t.Errorf("inspection_location %v", loc)
	}
	if _, ok := loc["postal_code"]; ok {
		t.Error("undisclosed postal_code present")
	}
	slices.Sort(res.Disclosed)
	if want := []string{"501", "502.0", "503.region"}; !slices.Equal(res.Disclosed, want) {
		t.Errorf("disclosed %v, want %v", res.Disclosed, want)
	}
	// The same token against the wrong expectations.
	_, err = Verify(draft(t, "kbt.cbor"), ks, WithClock(at), WithAudience("https://other.example"))
	assertCheck(t, err, CheckAudience, ErrAudience)
	_, err = Verify(draft(t, "kbt.cbor"), ks, WithClock(func() time.Time { return time.Unix(1725330600, 0).Add(time.Hour) }))
	assertCheck(t, err, CheckTime, ErrExpired)
	// The issuer's SD-CWT alone is not a presentation.
	_, err = Verify(draft(t, "issuer_cwt.cbor"), ks, WithClock(at))
	assertCheck(t, err, CheckKeyBinding, ErrKeyBinding)
	// The holder's copy parses with every disclosure.
	s, err := Parse(draft(t, "issuer_cwt.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	paths, _, err := s.Paths()
	if err != nil || len(paths) < 5 {
		t.Fatalf("paths %v: %v", paths, err)
	}
}

func assertCheck(t *testing.T, err error, check string, sentinel error) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *VerifyError", err)
	}
	if ve.Check != check || !errors.Is(err, sentinel) {
		t.Fatalf("failed check %q (%v), want %q wrapping %v", ve.Check, err, check, sentinel)
	}
}

type fixture struct {
	issuer, holder *keys.PrivateKey
	s              *SDCWT
	now            time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{now: time.Unix(1_800_000_000, 0)}
	f.issuer, _ = keys.Generate(cose.AlgorithmES256)
	f.holder, _ = keys.Generate(cose.AlgorithmES256)
	claims := map[any]any{
		ClaimIss: "https://issuer.example", ClaimIat: f.now.Unix() - 60, ClaimExp: f.now.Unix() + 3600,
		"artifact_digest": "sha256:abc",
		"builder_id":      SD{"https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main"},
		"source_ref":      SD{"refs/heads/main"},
		"results":         []any{SD{map[string]any{"result": "PASSED"}}, "plain"},
	}
	var err error
	if f.s, err = Issue(f.issuer, f.holder.Public(), claims, WithDecoys(3)); err != nil {
		t.Fatal(err)
	}
	// Through the wire, as the holder receives it.
	if f.s, err = Parse(f.s.Bytes()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) present(t testing.TB, names ...string) []byte {
	t.Helper()
	sel, err := f.s.Select(names)
	if err != nil {
		t.Fatal(err)
	}
	kbt, err := sel.Present(f.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return kbt
}

func (f *fixture) verify(kbt []byte, opts ...VerifyOption) (*Result, error) {
	opts = append([]VerifyOption{WithClock(func() time.Time { return f.now }), WithAudience("https://verifier.example"), WithNonce("n-1")}, opts...)
	return Verify(kbt, keys.Set{f.issuer.Public()}, opts...)
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	res, err := f.verify(f.present(t, "source_ref", "results.0"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Claims["source_ref"] != "refs/heads/main" || res.Claims["artifact_digest"] != "sha256:abc" {
		t.Errorf("claims %v", res.Claims)
	}
	if _, ok := res.Claims["builder_id"]; ok {
		t.Error("builder_id disclosed without being asked for")
	}
	if rs, _ := res.Claims["results"].([]any); len(rs) != 2 {
		t.Errorf("results %v", res.Claims["results"])
	}
	slices.Sort(res.Disclosed)
	if want := []string{"results.0", "source_ref"}; !slices.Equal(res.Disclosed, want) {
		t.Errorf("disclosed %v", res.Disclosed)
	}
	if _, err := f.s.Select([]string{"runner"}); !errors.Is(err, ErrNoSuchClaim) {
		t.Errorf("select unknown: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	good := f.present(t, "builder_id", "source_ref")

	sel, _ := f.s.Select([]string{"builder_id", "source_ref"})
	foreign, _ := other.s.Select([]string{"source_ref"})
	mixed := &SDCWT{msg: sel.msg, Disclosures: append(slices.Clone(sel.Disclosures), foreign.Disclosures...)}
	mixedKBT, _ := mixed.Present(f.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	tampered := &SDCWT{msg: sel.msg, Disclosures: []*Disclosure{{Raw: append(slices.Clone(sel.Disclosures[0].Raw[:len(sel.Disclosures[0].Raw)-1]), 'X')}}}
	if d, err := ParseDisclosure(tampered.Disclosures[0].Raw); err == nil {
		tampered.Disclosures[0] = d
	}
	tamperedKBT, _ := tampered.Present(f.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	otherHolder, _ := sel.Present(other.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})

	cases := []struct {
		name  string
		kbt   []byte
		opts  []VerifyOption
		check string
		err   error
	}{
		{"tampered disclosure", tamperedKBT, nil, CheckDisclosures, ErrDisclosure},
		{"disclosure of another credential", mixedKBT, nil, CheckDisclosures, ErrDisclosure},
		{"missing key binding", sel.Bytes(), nil, CheckKeyBinding, ErrKeyBinding},
		{"key binding by another key", otherHolder, nil, CheckKeyBinding, ErrKeyBinding},
		{"wrong audience", good, []VerifyOption{WithAudience("https://other.example")}, CheckAudience, ErrAudience},
		{"wrong nonce", good, []VerifyOption{WithNonce("n-2")}, CheckNonce, ErrNonce},
		{"expired", good, []VerifyOption{WithClock(func() time.Time { return f.now.Add(2 * time.Hour) })}, CheckTime, ErrExpired},
		{"unpinned issuer", other.present(t, "source_ref"), nil, CheckSignature, ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.verify(c.kbt, c.opts...)
			assertCheck(t, err, c.check, c.err)
		})
	}
	if _, err := f.verify(good); err != nil {
		t.Fatal(err)
	}
}
