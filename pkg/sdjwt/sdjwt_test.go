package sdjwt

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

type fixture struct {
	issuer, holder *keys.PrivateKey
	sd             *SDJWT
	now            time.Time
}

func newFixture(t testing.TB, opts ...IssueOption) *fixture {
	t.Helper()
	f := &fixture{now: time.Unix(1_800_000_000, 0)}
	var err error
	if f.issuer, err = keys.Generate(cose.AlgorithmES256); err != nil {
		t.Fatal(err)
	}
	if f.holder, err = keys.Generate(cose.AlgorithmES256); err != nil {
		t.Fatal(err)
	}
	cnf, err := Confirmation(f.holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{
		"iss": "https://issuer.example", "vct": "https://trustfabric.dev/vct/build",
		"iat": f.now.Unix() - 60, "exp": f.now.Unix() + 3600, "cnf": cnf,
		"artifact_digest": "sha256:abc",
		"builder_id":      SD{"https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main"},
		"source_repo":     SD{"https://github.com/acme/widgets"},
		"source":          SD{map[string]any{"ref": SD{"refs/heads/main"}, "commit": SD{"0123abcd"}}},
		"results":         []any{SD{"tests: passed"}, SD{"scan: 0 critical"}, "plain"},
	}
	if f.sd, err = Issue(f.issuer, claims, opts...); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) present(t testing.TB, names ...string) *SDJWT {
	t.Helper()
	sel, err := f.sd.Select(names)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sel.Present(f.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) verify(s *SDJWT, opts ...VerifyOption) (*Result, error) {
	opts = append([]VerifyOption{WithClock(func() time.Time { return f.now }), WithAudience("https://verifier.example"), WithNonce("n-1")}, opts...)
	return Verify(s, keys.Set{f.issuer.Public()}, opts...)
}

// reparse goes through the compact serialization, as a verifier would.
func reparse(t testing.TB, s *SDJWT) *SDJWT {
	t.Helper()
	p, err := Parse(s.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripSubset(t *testing.T) {
	f := newFixture(t, WithDecoys(4))
	if len(f.sd.Disclosures) != 7 {
		t.Fatalf("%d disclosures, want 7", len(f.sd.Disclosures))
	}
	res, err := f.verify(reparse(t, f.present(t, "builder_id", "source.ref", "results.1")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"builder_id": "https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main",
		"source":     map[string]any{"ref": "refs/heads/main"},
		"results":    []any{"scan: 0 critical", "plain"},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, res.Claims[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	for _, hidden := range []string{"source_repo"} {
		if _, ok := res.Claims[hidden]; ok {
			t.Errorf("%s disclosed without being asked for", hidden)
		}
	}
	if _, ok := res.Claims["source"].(map[string]any)["commit"]; ok {
		t.Error("source.commit disclosed")
	}
	if diff := cmp.Diff([]string{"builder_id", "source", "source.ref", "results.1"}, res.Disclosed, cmp.Transformer("sort", func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	})); diff != "" {
		t.Errorf("disclosed (-want +got):\n%s", diff)
	}
	if res.Claims["artifact_digest"] != "sha256:abc" || !res.KeyBound {
		t.Errorf("result %+v", res)
	}
	// The payload carries decoys: more digests than disclosures at the top.
	if strings.Count(f.sd.IssuerJWT, ".") != 2 {
		t.Fatal("not a JWS")
	}
}

func TestSelectUnknownClaim(t *testing.T) {
	f := newFixture(t)
	if _, err := f.sd.Select([]string{"runner_name"}); !errors.Is(err, ErrNoSuchClaim) {
		t.Fatalf("select of an unknown claim: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	good := f.present(t, "builder_id", "source_repo")

	tamper := func(s *SDJWT, i int, mutate func(*Disclosure)) *SDJWT {
		out := &SDJWT{IssuerJWT: s.IssuerJWT, KeyBinding: s.KeyBinding}
		for j, d := range s.Disclosures {
			c := *d
			if j == i {
				mutate(&c)
			}
			out.Disclosures = append(out.Disclosures, &c)
		}
		return out
	}
	relabel := func(d *Disclosure) {
		// Same salt and name, another value: a new digest.
		b, _ := json.Marshal([]any{d.Salt, d.Name, "https://github.com/evil/widgets"})
		d.Raw = b64.EncodeToString(b)
	}
	fromOther, err := other.sd.Select([]string{"source_repo"})
	if err != nil {
		t.Fatal(err)
	}
	mixed := &SDJWT{IssuerJWT: f.sd.IssuerJWT, Disclosures: append(append([]*Disclosure{}, good.Disclosures...), fromOther.Disclosures...)}
	mixedKB, err := mixed.Present(f.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	wrongHolder, err := (&SDJWT{IssuerJWT: good.IssuerJWT, Disclosures: good.Disclosures}).Present(other.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	dup := &SDJWT{IssuerJWT: good.IssuerJWT, Disclosures: append(append([]*Disclosure{}, good.Disclosures...), good.Disclosures[0])}
	dupKB, err := dup.Present(f.holder, Presentation{Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	dropped := &SDJWT{IssuerJWT: good.IssuerJWT, Disclosures: good.Disclosures[:1], KeyBinding: good.KeyBinding}

	cases := []struct {
		name  string
		s     *SDJWT
		opts  []VerifyOption
		check string
		err   error
	}{
		{"tampered disclosure", tamper(good, 0, relabel), nil, CheckDisclosures, ErrDisclosure},
		{"disclosure of another credential", mixedKB, nil, CheckDisclosures, ErrDisclosure},
		{"disclosure presented twice", dupKB, nil, CheckDisclosures, ErrDisclosure},
		{"missing key binding", &SDJWT{IssuerJWT: good.IssuerJWT, Disclosures: good.Disclosures}, nil, CheckKeyBinding, ErrKeyBinding},
		{"key binding by another key", wrongHolder, nil, CheckKeyBinding, ErrKeyBinding},
		{"disclosure removed after binding", dropped, nil, CheckKeyBinding, ErrKeyBinding},
		{"wrong audience", good, []VerifyOption{WithAudience("https://other.example")}, CheckAudience, ErrAudience},
		{"wrong nonce", good, []VerifyOption{WithNonce("n-2")}, CheckNonce, ErrNonce},
		{"expired", good, []VerifyOption{WithClock(func() time.Time { return f.now.Add(2 * time.Hour) })}, CheckTime, ErrExpired},
		{"not yet valid", good, []VerifyOption{WithClock(func() time.Time { return f.now.Add(-time.Hour) })}, CheckTime, ErrNotYetValid},
		{"unpinned issuer", &SDJWT{IssuerJWT: other.sd.IssuerJWT, Disclosures: nil, KeyBinding: ""}, []VerifyOption{WithoutKeyBindingUnsafe()}, CheckSignature, ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.verify(c.s, c.opts...)
			assertCheck(t, err, c.check, c.err)
		})
	}
	// The good one passes, so the cases above fail for their own reason.
	if _, err := f.verify(reparse(t, good)); err != nil {
		t.Fatal(err)
	}
}

func TestCollisions(t *testing.T) {
	f := newFixture(t)
	if _, err := Issue(f.issuer, map[string]any{"_sd": []any{}}); !errors.Is(err, ErrCollision) {
		t.Errorf("issue with _sd claim: %v", err)
	}
	if _, err := ParseDisclosure(b64.EncodeToString([]byte(`["salt","_sd","x"]`))); !errors.Is(err, ErrCollision) {
		t.Errorf("disclosure named _sd: %v", err)
	}
	// A disclosure whose name is also a plain claim of the same object.
	d, err := newDisclosure(defaultRand, "iss", false, "https://evil.example")
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{"iss": "https://issuer.example", "_sd": []any{d.Digest()}}
	if _, _, err := resolve(payload, []*Disclosure{d}); !errors.Is(err, ErrCollision) {
		t.Errorf("disclosure colliding with a plain claim: %v", err)
	}
	// A digest listed twice.
	payload = map[string]any{"_sd": []any{d.Digest()}, "x": []any{map[string]any{"...": d.Digest()}}}
	if _, _, err := resolve(payload, nil); !errors.Is(err, ErrDisclosure) {
		t.Errorf("digest listed twice: %v", err)
	}
	// An element disclosure referenced from _sd.
	e, err := newDisclosure(defaultRand, "", true, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := resolve(map[string]any{"_sd": []any{e.Digest()}}, []*Disclosure{e}); !errors.Is(err, ErrDisclosure) {
		t.Errorf("element disclosure in _sd: %v", err)
	}
}

func TestJSONSerialization(t *testing.T) {
	f := newFixture(t)
	p := f.present(t, "source_repo")
	parts := strings.Split(p.IssuerJWT, ".")
	var ds []string
	for _, d := range p.Disclosures {
		ds = append(ds, d.Raw)
	}
	hdr := map[string]any{"disclosures": ds, "kb_jwt": p.KeyBinding}
	flat, _ := json.Marshal(map[string]any{"protected": parts[0], "payload": parts[1], "signature": parts[2], "header": hdr})
	general, _ := json.Marshal(map[string]any{"payload": parts[1], "signatures": []any{map[string]any{"protected": parts[0], "signature": parts[2], "header": hdr}}})
	for name, b := range map[string][]byte{"flattened": flat, "general": general} {
		t.Run(name, func(t *testing.T) {
			s, err := ParseJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.verify(s)
			if err != nil {
				t.Fatal(err)
			}
			if res.Claims["source_repo"] != "https://github.com/acme/widgets" {
				t.Errorf("claims %v", res.Claims)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t)
	many := f.sd.IssuerJWT + strings.Repeat("~"+f.sd.Disclosures[0].Raw, MaxDisclosures+1) + "~"
	if _, err := Parse(many); !errors.Is(err, ErrMalformed) {
		t.Errorf("too many disclosures: %v", err)
	}
	deep := b64.EncodeToString([]byte(`["s","n",` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + `]`))
	if _, err := ParseDisclosure(deep); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep disclosure: %v", err)
	}
	if _, err := Parse(strings.Repeat("a", MaxSize+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized: %v", err)
	}
	for _, bad := range []string{"", "abc", "a.b.c", f.sd.IssuerJWT, f.sd.IssuerJWT + "~~", f.sd.IssuerJWT + "~x=~"} {
		if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.40q): %v", bad, err)
		}
	}
}

// TestNumbersExact: numbers keep their value, on the fast path and beyond it.
func TestNumbersExact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1570000000}`, "1570000000"},
		{`{"a":9007199254740993}`, "9007199254740993"},
		{`{"a":1.5}`, "1.5"},
		{`{"a":-3}`, "-3"},
	} {
		var m map[string]any
		if err := decodeJSON([]byte(c.in), &m); err != nil {
			t.Fatal(err)
		}
		if n, ok := m["a"].(json.Number); !ok || string(n) != c.want {
			t.Errorf("%s: got %#v, want json.Number %s", c.in, m["a"], c.want)
		}
	}
}
