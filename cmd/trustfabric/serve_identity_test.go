package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
)

// startServe runs `trustfabric serve` in process on a free loopback port and
// returns its URL; it stops when the test ends.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	addr, _ := freeURL(t)
	return startServeAt(t, addr, args...)
}

func freeURL(t *testing.T) (string, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String(), "http://" + ln.Addr().String()
}

// TestServeWithIdentity is issue 4's "Done when": with the fake GitHub runner
// endpoint and issuer, `identity` gets a WIT from `serve --identity-config`;
// a statement signed with it registers (with WIMSE headers) with that
// service, which trusts its own bundle and requires the headers; the same
// statement without the headers, or at a service that does not trust the
// bundle, is refused.
func TestServeWithIdentity(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	gh, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	addr, url := freeURL(t)
	cfg := fmt.Sprintf("trustDomain: ci.example.org\nproviders:\n  - type: github\n    issuer: %s\n    audience: %s\n    allow:\n      repository_owner: [acme]\n", gh.URL(), url)
	os.WriteFile(p("identity.yaml"), []byte(cfg), 0o644)
	ts := startServeAt(t, addr, "--data", p("ts"), "--identity-config", p("identity.yaml"))
	other := startServe(t, "--data", p("other"))

	for k, v := range gh.Env() {
		t.Setenv(k, v)
	}
	mustRun(t, "identity", "--server", ts, "--wit-out", p("wit"), "--key-out", p("key.jwk"))
	os.WriteFile(p("prov.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"00"}}],"predicateType":"x","predicate":{}}`), 0o644)
	mustRun(t, "statement", "sign", "--wit", p("wit"), "--key", p("key.jwk"), "--subject", "sha256:00", "--payload", p("prov.json"), "--out", p("s.cose"))

	// Without WIMSE headers: refused.
	if code, _, errOut := tf(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose")); code == 0 {
		t.Fatal("registration without WIMSE headers was accepted")
	} else if !strings.Contains(errOut, "Workload identity required") {
		t.Errorf("refusal does not say why: %s", errOut)
	}
	// With them: registered; the receipt verifies with the fetched key set,
	// and the statement with the served bundle at registration time.
	out := mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--wit", p("wit"), "--key", p("key.jwk"))
	if !strings.Contains(out, "registered entry ") {
		t.Errorf("register: %s", out)
	}
	mustRun(t, "receipt", "verify", p("t.cose"), "--service-key", ts)
	resp, err := http.Get(ts + "/.well-known/wit-bundle")
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(p("bundle.json"), bundle, 0o644)
	out = mustRun(t, "statement", "verify", p("t.cose"), "--identity-bundle", p("bundle.json"), "--trust-domain", "ci.example.org", "--service-key", ts, "--payload", p("prov.json"))
	if !strings.Contains(out, "(receipt)") {
		t.Errorf("the WIT was not checked at the receipt's registration time:\n%s", out)
	}

	// Asking for registration proof of a statement without a receipt fails
	// rather than falling back to the signer's iat.
	if code, _, _ := tf(t, "statement", "verify", p("s.cose"), "--identity-bundle", p("bundle.json"), "--trust-domain", "ci.example.org", "--service-key", ts); code != exitInvalid {
		t.Errorf("--service-key with no receipt: exit %d, want 1", code)
	}

	// A service that does not trust the identity server's bundle refuses it.
	if code, _, errOut := tf(t, "register", "--ts", other, p("s.cose"), "--out", p("t2.cose")); code == 0 {
		t.Fatal("a service without the identity bundle registered a WIT-bound statement")
	} else if !strings.Contains(errOut, "Workload Identity Token") {
		t.Errorf("refusal does not say why: %s", errOut)
	}
}

// startServeAt is startServe on a chosen address.
func startServeAt(t *testing.T, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var out, errOut strings.Builder
		if code := run(ctx, append([]string{"serve", "--addr", addr, "--log-level", "error"}, args...), &out, &errOut); code != 0 && ctx.Err() == nil {
			t.Errorf("serve exited %d: %s", code, errOut.String())
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	url := "http://" + addr
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve did not start on %s", addr)
	return ""
}

// TestServeRegisterVerify is issue 3's "Done when": `serve --data DIR`
// starts with no other setup; a statement from `statement sign` registers
// with `register`, and the transparent statement verifies with `receipt
// verify` using the key set fetched from the service.
func TestServeRegisterVerify(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	ts := startServe(t, "--data", p("data"), "--trust-key", p("issuer.pub.jwk"))
	os.WriteFile(p("prov.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`), 0o644)
	mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org", "--subject", "sha256:00", "--payload", p("prov.json"), "--out", p("s.cose"))
	mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--receipt-out", p("r.cose"))
	out := mustRun(t, "receipt", "verify", p("t.cose"), "--service-key", ts, "--issuer-key", p("issuer.pub.jwk"))
	if !strings.Contains(out, "ok   statement.signature") || !strings.Contains(out, "receipt[0].receipt.signature") {
		t.Errorf("receipt verify:\n%s", out)
	}
	mustRun(t, "receipt", "verify", "--statement", p("s.cose"), "--receipt", p("r.cose"), "--service-key", ts)
	// Registering it again gives the same entry.
	first := mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t2.cose"))
	again := mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t3.cose"))
	if first != again {
		t.Errorf("registering twice gave %q then %q", first, again)
	}
}
