package transparency_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
)

// TestWitnessesOnAWS: witnessing on the AWS storage backend (MariaDB + S3,
// through the composition root as `serve --storage aws` builds it), two own
// witnesses, threshold 2, failing closed: receipts carry both cosignatures;
// with one witness down a registration gets no receipt until it is back.
func TestWitnessesOnAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service on MariaDB + S3")
	}
	tg := awstest.New(t)
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trust := writeKey(t, dir, "issuer.jwk", issuer)
	svc, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := svc.MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "service.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	var ws [2]*witnesstest.Witness
	wit := &transparency.Witnessing{Threshold: 2, Timeout: "2s"}
	for i, name := range []string{"w1.test", "w2.test"} {
		if ws[i], err = witnesstest.New(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ws[i].Close)
		wit.Witnesses = append(wit.Witnesses, transparency.WitnessEndpoint{URL: ws[i].URL, Key: ws[i].VKey})
	}
	cfg := server.Config{Addr: "127.0.0.1:0", Dir: filepath.Join(dir, "data"), TrustKeys: []string{trust},
		Issuer: "https://witnessed-aws.test", KeyFile: keyFile, Witnessing: wit,
		Storage: transparency.StorageConfig{Kind: server.StorageAWS, DB: tg.DSN, S3Bucket: tg.Bucket,
			S3Endpoint: tg.Endpoint, S3PathStyle: tg.Endpoint != "", S3Prefix: tg.Prefix}}
	// The witnesses learn the (derived) log key before the first checkpoint.
	vkey, err := server.InitLogKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if err := w.AddLog(vkey); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		for _, w := range ws {
			w.Down.Store(false) // let the last checkpoint be published
		}
		cancel()
		<-served
		srv.TS.Close(context.Background())
	}()
	client, err := scrapi.NewClient("http://" + srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var trusted scitt.Witnesses
	for _, w := range ws {
		v, err := scitt.ParseWitnessKey(w.VKey)
		if err != nil {
			t.Fatal(err)
		}
		trusted.Keys = append(trusted.Keys, v)
	}
	trusted.Threshold = 2
	sign := func(subject string) []byte {
		stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.test", Subject: subject}, []byte(subject))
		if err != nil {
			t.Fatal(err)
		}
		return stmt
	}

	stmt := sign("witnessed on aws")
	reg, err := client.Register(ctx, stmt)
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, stmt, reg.Receipt, srv.TS.Keys())
	if names, err := cosignersOf(t, stmt, reg.Receipt, trusted); err != nil || len(names) != 2 {
		t.Fatalf("cosigned by %v: %v", names, err)
	}

	// Fail closed: one witness down, no receipt ...
	ws[1].Down.Store(true)
	held := sign("held on aws")
	if _, r, err := client.Submit(ctx, held); err != nil || (r != nil && r.Receipt != nil) {
		t.Fatalf("submit with a witness down: receipt %v, %v", r != nil, err)
	}
	id, err := transparency.ParseEntryID(entryIDOf(t, held))
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	if _, err := srv.TS.AwaitReceipt(wctx, id); !errors.Is(err, transparency.ErrPending) {
		t.Fatalf("receipt with a required witness down: %v, want ErrPending", err)
	}
	// ... until it is back.
	ws[1].Down.Store(false)
	wctx, wcancel = context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	rb, err := srv.TS.AwaitReceipt(wctx, id)
	if err != nil {
		t.Fatalf("after the witness came back: %v", err)
	}
	if names, err := cosignersOf(t, held, rb, trusted); err != nil || len(names) != 2 {
		t.Fatalf("cosigned by %v: %v", names, err)
	}
}
