package wimse

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

func verifiedWIT(t testing.TB, f *fixture) *WIT {
	t.Helper()
	w, err := ParseWIT(f.wit, Bundles{f.bundle})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWPTRoundTrip(t *testing.T) {
	f := newFixture(t)
	w := verifiedWIT(t, f)
	tok, err := MintWPT(f.workload, f.wit, "https://ts.example/entries", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := VerifyWPT(tok, w, ProofPolicy{Audiences: []string{"https://ts.example/entries"}, Replay: NewReplayCache(10)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Audience != "https://ts.example/entries" || p.JTI == "" || p.Expiry.Sub(p.IssuedAt) != DefaultProofLifetime {
		t.Errorf("WPT = %+v", p)
	}
}

func TestWPTReplayedJTI(t *testing.T) {
	f := newFixture(t)
	w := verifiedWIT(t, f)
	tok, _ := MintWPT(f.workload, f.wit, "https://ts.example/entries", 0)
	pol := ProofPolicy{Audiences: []string{"https://ts.example/entries"}, Replay: NewReplayCache(10)}
	if _, err := VerifyWPT(tok, w, pol); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyWPT(tok, w, pol); !errors.Is(err, ErrReplay) {
		t.Fatalf("second use: err = %v, want ErrReplay", err)
	}
}

func TestWPTForAnotherAudience(t *testing.T) {
	f := newFixture(t)
	tok, _ := MintWPT(f.workload, f.wit, "https://other.example/entries", 0)
	_, err := VerifyWPT(tok, verifiedWIT(t, f), ProofPolicy{Audiences: []string{"https://ts.example/entries"}, Replay: NewReplayCache(10)})
	if !errors.Is(err, ErrAudience) {
		t.Fatalf("err = %v, want ErrAudience", err)
	}
}

func TestWPTSignedByDifferentKey(t *testing.T) {
	f := newFixture(t)
	other, _ := keys.Generate(cose.AlgorithmES256)
	tok, _ := MintWPT(other, f.wit, "https://ts.example/entries", 0)
	_, err := VerifyWPT(tok, verifiedWIT(t, f), ProofPolicy{Audiences: []string{"https://ts.example/entries"}, Replay: NewReplayCache(10)})
	if !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("err = %v, want ErrProofMismatch", err)
	}
}

func TestWPTForAnotherWIT(t *testing.T) {
	f := newFixture(t)
	g := newFixture(t)
	// Signed with f's workload key but hashing g's WIT.
	tok, _ := MintWPT(f.workload, g.wit, "https://ts.example/entries", 0)
	_, err := VerifyWPT(tok, verifiedWIT(t, f), ProofPolicy{Audiences: []string{"https://ts.example/entries"}, Replay: NewReplayCache(10)})
	if !errors.Is(err, ErrProofMismatch) {
		t.Fatalf("err = %v, want ErrProofMismatch", err)
	}
}

func TestWPTBadShapes(t *testing.T) {
	f := newFixture(t)
	w := verifiedWIT(t, f)
	craft := func(typ string, claims map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.workload.Signer}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jwt.Signed(s).Claims(claims).Serialize()
		return tok
	}
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"aud": "https://ts.example/x", "exp": now.Add(time.Minute).Unix(), "jti": "j1", "wth": witHash(f.wit)}
	}
	far := good()
	far["exp"] = now.Add(time.Hour).Unix()
	expired := good()
	expired["exp"] = now.Add(-2 * time.Minute).Unix()
	noJTI := good()
	delete(noJTI, "jti")
	oth := good()
	oth["oth"] = map[string]string{"x-token": "abc"}
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"application typ accepted", craft("application/wpt+jwt", good()), nil},
		{"wit typ refused", craft(TypeWIT, good()), ErrWrongType},
		{"exp too far", craft(TypeWPT, far), ErrMalformed},
		{"expired", craft(TypeWPT, expired), ErrExpired},
		{"no jti", craft(TypeWPT, noJTI), ErrMalformed},
		{"unknown oth", craft(TypeWPT, oth), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyWPT(tt.tok, w, ProofPolicy{Audiences: []string{"https://ts.example/x"}, Replay: NewReplayCache(10)})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := NewReplayCache(2)
	now := time.Now()
	if err := c.Use("a", now.Add(time.Second), now); err != nil {
		t.Fatal(err)
	}
	if err := c.Use("b", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := c.Use("c", now.Add(time.Minute), now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("err = %v, want ErrReplayCacheFull", err)
	}
	later := now.Add(2 * time.Second) // "a" expired: its slot is reused
	if err := c.Use("c", later.Add(time.Minute), later); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	if err := c.Use("b", later.Add(time.Minute), later); !errors.Is(err, ErrReplay) {
		t.Fatalf("err = %v, want ErrReplay", err)
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(1000)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if c.Use(fmt.Sprint(j), now.Add(time.Minute), now) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ok != 50 {
		t.Fatalf("%d ids accepted, want each of 50 exactly once", ok)
	}
}

func TestTransportAndMiddleware(t *testing.T) {
	f := newFixture(t)
	var got *Identity
	srv := httptest.NewServer(nil)
	defer srv.Close()
	auth := &Authenticator{Bundles: Bundles{f.bundle}, Origins: []string{srv.URL}, Replay: NewReplayCache(100)}
	srv.Config.Handler = auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = FromContext(r.Context())
		io.WriteString(w, "ok")
	}))
	client := &http.Client{Transport: &Transport{Credentials: Credentials{WIT: f.wit, Key: f.workload}}}
	for i := 0; i < 2; i++ { // a fresh WPT each time: no replay error
		resp, err := client.Get(srv.URL + "/entries?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got == nil || got.WIT.ID != f.id || got.Proof.Audience != srv.URL+"/entries" {
		t.Fatalf("identity in context = %+v", got)
	}

	// Without headers: 401 with a bare challenge; with a replayed WPT: 401
	// with error="invalid_token" (RFC 9110 §15.5.2: every 401 carries
	// WWW-Authenticate).
	resp, _ := http.Get(srv.URL + "/entries")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `WIMSE realm="`+srv.URL+`"` {
		t.Fatalf("no headers: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	wpt, _ := MintWPT(f.workload, f.wit, srv.URL+"/entries", 0)
	for i, want := range []int{200, 401} {
		req, _ := http.NewRequest("GET", srv.URL+"/entries", nil)
		req.Header.Set(HeaderWIT, f.wit)
		req.Header.Set(HeaderWPT, wpt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("attempt %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if c := resp.Header.Get("WWW-Authenticate"); want == 401 && !strings.HasPrefix(c, `WIMSE realm="`+srv.URL+`", error="invalid_token", error_description="`) {
			t.Fatalf("replayed WPT: WWW-Authenticate %q", c)
		}
	}
}

func TestAuthenticateRepeatedHeader(t *testing.T) {
	f := newFixture(t)
	auth := &Authenticator{Bundles: Bundles{f.bundle}, Origins: []string{"https://ts.example"}, Replay: NewReplayCache(100)}
	req := httptest.NewRequest("POST", "https://ts.example/entries", nil)
	req.Header.Add(HeaderWIT, f.wit)
	req.Header.Add(HeaderWIT, f.wit)
	wpt, _ := MintWPT(f.workload, f.wit, "https://ts.example/entries", 0)
	req.Header.Set(HeaderWPT, wpt)
	if _, err := auth.Authenticate(req); !errors.Is(err, ErrMissingHeader) {
		t.Fatalf("err = %v, want ErrMissingHeader", err)
	}
}

func FuzzVerifyWPT(f *testing.F) {
	fx := newFixture(f)
	w := verifiedWIT(f, fx)
	tok, _ := MintWPT(fx.workload, fx.wit, "https://ts.example/x", 0)
	f.Add(tok)
	f.Add("x.y.z")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = VerifyWPT(s, w, ProofPolicy{Audiences: []string{"https://ts.example/x"}})
	})
}
