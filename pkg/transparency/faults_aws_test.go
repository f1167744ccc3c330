package transparency_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
)

// cutProxy forwards TCP connections to target until cut: then it closes
// every open connection and refuses new ones (a database or object store
// that went away), until restored.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close(); c.Close() }()
	io.Copy(c, u)
	c.Close()
	u.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// TestStorageFaultsAWS: with the database, then the bucket, unreachable, the
// service answers 503 with problem details and Retry-After, acknowledges
// nothing it cannot keep, and recovers by itself once they are back: every
// acknowledged registration gets a verifying receipt, with no repair step.
func TestStorageFaultsAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test runs the service on MariaDB + S3")
	}
	tg := awstest.New(t)
	dsn, err := mysql.ParseDSN(tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := url.Parse(tg.Endpoint)
	if err != nil || ep.Host == "" {
		awstest.Skip(t, "TF_S3_ENDPOINT "+tg.Endpoint+": the fault test needs a self-hosted endpoint to cut")
	}
	db := newCutProxy(t, dsn.Addr)
	s3 := newCutProxy(t, ep.Host)
	dsn.Addr = db.addr()
	dsn.Timeout, dsn.ReadTimeout, dsn.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second

	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trust := writeKey(t, dir, "issuer.jwk", issuer)
	svc, _ := keys.Generate(cose.AlgorithmES256)
	jwk, _ := svc.MarshalJWK()
	keyFile := filepath.Join(dir, "service.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv, err := server.New(ctx, server.Config{Addr: "127.0.0.1:0", Dir: filepath.Join(dir, "data"), TrustKeys: []string{trust},
		Issuer: "https://faults.test", KeyFile: keyFile,
		Storage: transparency.StorageConfig{Kind: server.StorageAWS, DB: dsn.FormatDSN(), S3Bucket: tg.Bucket,
			S3Endpoint: "http://" + s3.addr(), S3PathStyle: true, S3Prefix: tg.Prefix}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served; srv.TS.Close(context.Background()) }()
	base := "http://" + srv.Addr()

	sign := func(subject string) []byte {
		stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.test", Subject: subject}, []byte(subject))
		if err != nil {
			t.Fatal(err)
		}
		return stmt
	}
	client, _ := scrapi.NewClient(base, scrapi.WithBackoff(50*time.Millisecond, time.Second))
	ks, err := client.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := sign("before")
	if _, err := client.Register(ctx, first); err != nil {
		t.Fatal(err)
	}

	// want503 checks a 503 with problem details and Retry-After.
	want503 := func(what string, resp *http.Response) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d, want 503; body %q", what, resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != scrapi.MediaTypeProblemDetails {
			t.Fatalf("%s: Retry-After %q, Content-Type %q", what, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
		}
		p, err := scrapi.ParseProblem(body)
		if err != nil || p.Title == "" || p.Detail == "" {
			t.Fatalf("%s: problem details %+v, %v", what, p, err)
		}
		if strings.Contains(p.Detail, dsn.Passwd) || strings.Contains(p.Detail, db.addr()) {
			t.Fatalf("%s: problem details leak the database: %q", what, p.Detail)
		}
	}
	post := func(stmt []byte) *http.Response {
		t.Helper()
		resp, err := http.Post(base+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(stmt))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// Database down: registrations are refused (not acknowledged).
	db.cut()
	want503("POST /entries with the database down", post(sign("db down")))
	db.restore()
	during := sign("after the database came back")
	reg, err := client.Register(ctx, during)
	if err != nil {
		t.Fatalf("registration after the database came back: %v", err)
	}
	verifyReceipt(t, during, reg.Receipt, ks)

	// Bucket down: the checkpoint cannot be read (503); a registration is
	// stored and sequenced in the database, so it is acknowledged as pending
	// (303) or refused (503), never lost.
	s3.cut()
	resp, err := http.Get(base + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	want503("GET /checkpoint with the bucket down", resp)
	pending := sign("bucket down")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Post(base+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(pending))
	if err != nil {
		t.Fatal(err)
	}
	var pendingID string
	switch resp.StatusCode {
	case http.StatusSeeOther, http.StatusAccepted:
		loc := resp.Header.Get("Location")
		pendingID = loc[strings.LastIndex(loc, "/")+1:]
		resp.Body.Close()
	case http.StatusServiceUnavailable:
		want503("POST /entries with the bucket down", resp)
	default:
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /entries with the bucket down: %d %s", resp.StatusCode, b)
	}
	s3.restore()

	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	if pendingID != "" {
		r, err := client.Receipt(rctx, pendingID)
		if err != nil {
			t.Fatalf("registration accepted with the bucket down has no receipt after it came back: %v", err)
		}
		verifyReceipt(t, pending, r, ks)
	}
	for i, stmt := range [][]byte{first, during, sign("after the bucket came back")} {
		reg, err := client.Register(rctx, stmt)
		if err != nil {
			t.Fatalf("statement %d after recovery: %v", i, err)
		}
		verifyReceipt(t, stmt, reg.Receipt, ks)
	}
	t.Logf("bucket down: the registration was %s", map[bool]string{true: "accepted (303) and got its receipt after recovery", false: "refused (503)"}[pendingID != ""])
}
