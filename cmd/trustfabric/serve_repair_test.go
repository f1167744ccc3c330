package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveUntilStopped runs `serve` until the returned stop is called.
func serveUntilStopped(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	addr, url := freeURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		var out, errOut strings.Builder
		if code := run(ctx, append([]string{"serve", "--addr", addr, "--log-level", "error"}, args...), &out, &errOut); code != 0 && ctx.Err() == nil {
			t.Errorf("serve exited %d: %s", code, errOut.String())
		}
	})
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	for range 200 {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, stop
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("serve did not start on %s", addr)
	return "", nil
}

// TestServeLockAndRepair: a second `serve` on a served data directory exits
// with an error naming it; after a bit flip in the statement store `serve`
// refuses to start and points at --repair; `serve --repair` lists the lost
// statement; then `serve` starts and every other receipt verifies.
func TestServeLockAndRepair(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	data := p("data")
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	ts, stop := serveUntilStopped(t, "--data", data, "--trust-key", p("issuer.pub.jwk"), "--require-wimse=false")
	for i := range 4 {
		os.WriteFile(p(fmt.Sprintf("payload%d.txt", i)), fmt.Appendf(nil, "payload %d", i), 0o644)
		mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org", "--subject", fmt.Sprintf("s%d", i),
			"--payload", p(fmt.Sprintf("payload%d.txt", i)), "--content-type", "text/plain", "--out", p(fmt.Sprintf("s%d.cose", i)))
		mustRun(t, "register", "--ts", ts, p(fmt.Sprintf("s%d.cose", i)), "--out", p(fmt.Sprintf("t%d.cose", i)))
	}
	addr2, _ := freeURL(t)
	code, _, errOut := tf(t, "serve", "--addr", addr2, "--data", data, "--trust-key", p("issuer.pub.jwk"), "--log-level", "error")
	if code == 0 || !strings.Contains(errOut, data) {
		t.Fatalf("second serve on %s: exit %d, %q; want a failure naming the directory", data, code, errOut)
	}
	stop()

	// Flip a bit in the second statement record (the first is the policy).
	store := filepath.Join(data, "statements")
	b, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	puts := 0
	for off := 0; off+9 <= len(b); off += 8 + int(binary.BigEndian.Uint32(b[off:])) {
		if b[off+8] == 0x01 {
			if puts++; puts == 2 {
				b[off+50] ^= 1
				break
			}
		}
	}
	os.WriteFile(store, b, 0o600)
	code, _, errOut = tf(t, "serve", "--addr", addr2, "--data", data, "--trust-key", p("issuer.pub.jwk"), "--log-level", "error")
	if code == 0 || !strings.Contains(errOut, store) || !strings.Contains(errOut, "--repair") {
		t.Fatalf("serve on a damaged store: exit %d, %q; want a refusal naming the file and the repair", code, errOut)
	}
	out := mustRun(t, "serve", "--data", data, "--repair")
	if !strings.Contains(out, "statements lost:                 1") {
		t.Fatalf("repair output:\n%s", out)
	}
	ts, _ = serveUntilStopped(t, "--data", data, "--trust-key", p("issuer.pub.jwk"), "--require-wimse=false")
	verified := 0
	for i := range 4 {
		if code, _, _ := tf(t, "receipt", "verify", p(fmt.Sprintf("t%d.cose", i)), "--service-key", ts, "--issuer-key", p("issuer.pub.jwk")); code == 0 {
			verified++
		}
		// Registering every statement again restores the lost one.
		mustRun(t, "register", "--ts", ts, p(fmt.Sprintf("s%d.cose", i)), "--out", p(fmt.Sprintf("u%d.cose", i)))
		mustRun(t, "receipt", "verify", p(fmt.Sprintf("u%d.cose", i)), "--service-key", ts, "--issuer-key", p("issuer.pub.jwk"))
	}
	if verified != 4 {
		t.Fatalf("%d of 4 old transparent statements verify after the repair", verified)
	}
}
