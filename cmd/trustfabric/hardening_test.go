package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// serveWithIdentity starts `serve --identity-config` with a fake GitHub
// issuer, gets a WIT with `identity`, and returns the service URL and a path
// helper (wit, key.jwk in the directory).
func serveWithIdentity(t *testing.T, extra ...string) (string, func(string) string) {
	t.Helper()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	gh, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	addr, url := freeURL(t)
	cfg := fmt.Sprintf("trustDomain: ci.example.org\nproviders:\n  - type: github\n    issuer: %s\n    audience: %s\n", gh.URL(), url)
	os.WriteFile(p("identity.yaml"), []byte(cfg), 0o644)
	ts := startServeAt(t, addr, append([]string{"--data", p("ts"), "--identity-config", p("identity.yaml")}, extra...)...)
	for k, v := range gh.Env() {
		t.Setenv(k, v)
	}
	mustRun(t, "identity", "--server", ts, "--wit-out", p("wit"), "--key-out", p("key.jwk"))
	return ts, p
}

// Issue 11 item 6: the 401 of a registration without WIMSE headers carries
// a WWW-Authenticate challenge (RFC 9110 §15.5.2).
func TestServeRegistration401HasChallenge(t *testing.T) {
	ts, _ := serveWithIdentity(t)
	resp, err := http.Post(ts+"/entries", "application/cose", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `WIMSE realm="`+ts+`"` {
		t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("POST", ts+"/entries", strings.NewReader("x"))
	req.Header.Set("Content-Type", "application/cose")
	req.Header.Set(wimse.HeaderWIT, "a.b.c")
	req.Header.Set(wimse.HeaderWPT, "a.b.c")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(c, `error="invalid_token"`) {
		t.Fatalf("bad tokens: status %d, WWW-Authenticate %q", resp.StatusCode, c)
	}
}

// Issue 11 item 8: any authenticated workload could register a statement
// whose iss is another workload. With WIMSE required, iss must be the
// caller's WIT sub unless the configuration turns the rule off.
func TestServeCallerMustBeIssuer(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "key", "generate", "--out", filepath.Join(dir, "other.jwk"), "--public-out", filepath.Join(dir, "other.pub.jwk"))
	for _, tc := range []struct {
		config string
		ok     bool
	}{{"", false}, {"policy:\n  require_caller_issuer: false\n", true}} {
		extra := []string{"--trust-key", filepath.Join(dir, "other.pub.jwk")}
		if tc.config != "" {
			os.WriteFile(filepath.Join(dir, "ts.yaml"), []byte(tc.config), 0o644)
			extra = append(extra, "--config", filepath.Join(dir, "ts.yaml"))
		}
		ts, p := serveWithIdentity(t, extra...)
		os.WriteFile(p("x.txt"), []byte("hello"), 0o644)
		// Signed with a trusted key in another workload's name.
		mustRun(t, "statement", "sign", "--key", filepath.Join(dir, "other.jwk"), "--issuer", "spiffe://ci.example.org/github/victim/repo",
			"--subject", "sha256:00", "--payload", p("x.txt"), "--out", p("s.cose"))
		code, _, errOut := tf(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--wit", p("wit"), "--key", p("key.jwk"))
		if tc.ok != (code == 0) {
			t.Fatalf("config %q: exit %d: %s", tc.config, code, errOut)
		}
		if !tc.ok && !strings.Contains(errOut, "is not the registering workload") {
			t.Errorf("refusal does not say why: %s", errOut)
		}
		// The caller's own statement registers either way.
		mustRun(t, "statement", "sign", "--wit", p("wit"), "--key", p("key.jwk"), "--subject", "sha256:00", "--payload", p("x.txt"), "--out", p("own.cose"))
		mustRun(t, "register", "--ts", ts, p("own.cose"), "--out", p("own.t.cose"), "--wit", p("wit"), "--key", p("key.jwk"))
	}
}

// Issue 11 item 6: WITs of another trust domain signed with EdDSA are
// accepted when the operator allows it for that domain.
func TestServeEdDSAWITFromPartnerDomain(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "partner-1", Algorithm: "EdDSA", Use: wimse.KeyUse}}})
	os.WriteFile(p("partner.json"), set, 0o644)
	mustRun(t, "key", "generate", "--out", p("key.jwk"), "--public-out", p("key.pub.jwk"))
	wk, err := keys.LoadPrivate(p("key.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: "partner-1"}}, (&jose.SignerOptions{}).WithType(wimse.TypeWIT))
	now := time.Now()
	wit, err := jwt.Signed(s).Claims(map[string]any{"sub": "spiffe://partner.example/build", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": "j1", "cnf": map[string]any{"jwk": jose.JSONWebKey{Key: wk.Signer.Public(), Algorithm: "ES256"}}}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("wit"), []byte(wit), 0o600)
	os.WriteFile(p("x.txt"), []byte("hello"), 0o644)
	// The statement is signed with the workload key in the WIT's name (not
	// WIT-bound: `statement sign --wit` reads WITs with the profile's
	// algorithms only); the registration is authenticated with the EdDSA WIT.
	mustRun(t, "statement", "sign", "--key", p("key.jwk"), "--issuer", "spiffe://partner.example/build", "--subject", "sha256:00", "--payload", p("x.txt"), "--out", p("s.cose"))

	strict := startServe(t, "--data", p("strict"), "--identity-bundle", "partner.example="+p("partner.json"), "--trust-key", p("key.pub.jwk"))
	if code, _, errOut := tf(t, "register", "--ts", strict, p("s.cose"), "--out", p("t0.cose"), "--wit", p("wit"), "--key", p("key.jwk")); code == 0 {
		t.Fatal("an EdDSA WIT was accepted without the operator's consent")
	} else if !strings.Contains(errOut, "EdDSA") {
		t.Errorf("refusal does not name the algorithm: %s", errOut)
	}
	ts := startServe(t, "--data", p("ts"), "--identity-bundle", "partner.example="+p("partner.json"), "--identity-bundle-alg", "partner.example=EdDSA", "--trust-key", p("key.pub.jwk"))
	mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--wit", p("wit"), "--key", p("key.jwk"))
	if code, _, _ := tf(t, "serve", "--data", p("bad"), "--identity-bundle-alg", "nowhere.example=EdDSA"); code == 0 {
		t.Fatal("--identity-bundle-alg for a domain without a bundle was accepted")
	}
}

// Issue 11 item 8: one client's many idle connections made every
// registration 503; connections are capped per client IP.
func TestServeConnectionsPerClientCapped(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	os.WriteFile(p("ts.yaml"), []byte("max_connections_per_client: 4\nbody_timeout: 1s\n"), 0o644)
	addr, _ := freeURL(t)
	ts := startServeAt(t, addr, "--data", p("data"), "--config", p("ts.yaml"), "--trust-key", p("issuer.pub.jwk"))
	time.Sleep(100 * time.Millisecond) // startServeAt's health probe connections close
	var idle []net.Conn
	for range 4 { // slow clients: headers sent, body never finished
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /entries HTTP/1.1\r\nHost: %s\r\nContent-Type: application/cose\r\nContent-Length: 100\r\n\r\nab", addr)
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fifth connection from one client: %v, %v; want 429", resp, err)
	}
	// Another client is served meanwhile.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	if r, err := other.Get(ts + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("another client while the first is at its cap: %v, %v", r, err)
	} else {
		r.Body.Close()
	}
	// The slow clients are cut off at the body deadline (408), and a
	// genuine registration from the same address then succeeds.
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow client %d: %v, %v; want 408", i, resp, err)
		}
		c.Close()
	}
	os.WriteFile(p("x.txt"), []byte("hello"), 0o644)
	mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org", "--subject", "sha256:00", "--payload", p("x.txt"), "--out", p("s.cose"))
	mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"))
}
