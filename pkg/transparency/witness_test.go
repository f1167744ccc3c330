package transparency_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
)

// witnessedEnv is a service whose checkpoints are cosigned by two
// witnesses.
type witnessedEnv struct {
	*env
	w    [2]*witnesstest.Witness // the own test witnesses, when used
	keys []string                // the witnesses' verifier keys
}

// newWitnessedEnv starts a service with two own test witnesses.
func newWitnessedEnv(t *testing.T, failOpen bool) *witnessedEnv {
	t.Helper()
	var ws [2]*witnesstest.Witness
	for i, name := range []string{"w1.test", "w2.test"} {
		w, err := witnesstest.New(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		ws[i] = w
	}
	e := openWitnessed(t, failOpen, func(vkey string) []transparency.WitnessEndpoint {
		var out []transparency.WitnessEndpoint
		for _, w := range ws {
			if err := w.AddLog(vkey); err != nil {
				t.Fatal(err)
			}
			out = append(out, transparency.WitnessEndpoint{URL: w.URL, Key: w.VKey})
		}
		return out
	})
	e.w = ws
	t.Cleanup(func() {
		for _, w := range ws {
			w.Down.Store(false) // let the last checkpoints be published
		}
	})
	return e
}

// openWitnessed starts a service whose witnesses (threshold 2) are given by
// start, called with the log's verifier key before the service opens (the
// witnesses must know the log before its first checkpoint).
func openWitnessed(t *testing.T, failOpen bool, start func(vkey string) []transparency.WitnessEndpoint) *witnessedEnv {
	t.Helper()
	e := &witnessedEnv{env: &env{dir: t.TempDir(), logs: &syncBuffer{}}}
	issuer, keyFile := newIssuer(t)
	e.issuer = issuer
	pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wit := &transparency.Witnessing{Threshold: 2, FailOpen: failOpen, Timeout: "2s"}
	opts := transparency.Options{Dir: e.dir, Policy: pol, Issuer: "https://ts.test",
		Witnessing: wit, Logger: slog.New(slog.NewJSONHandler(e.logs, nil))}
	vkey, err := transparency.InitLogKey(opts)
	if err != nil {
		t.Fatal(err)
	}
	wit.Witnesses = start(vkey)
	for _, w := range wit.Witnesses {
		e.keys = append(e.keys, w.Key)
	}
	e.svc, err = transparency.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptestServer(t, e.svc)
	t.Cleanup(func() {
		e.srv.Close()
		if err := e.svc.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	e.client, err = scrapi.NewClient(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *witnessedEnv) trusted(t *testing.T, th int) scitt.Witnesses {
	t.Helper()
	var w scitt.Witnesses
	for _, k := range e.keys {
		v, err := scitt.ParseWitnessKey(k)
		if err != nil {
			t.Fatal(err)
		}
		w.Keys = append(w.Keys, v)
	}
	w.Threshold = th
	return w
}

// cosignersOf verifies the receipt of stmt and the cosignatures of the
// checkpoint it carries.
func cosignersOf(t *testing.T, stmt, receipt []byte, w scitt.Witnesses) ([]string, error) {
	t.Helper()
	st, err := scitt.ParseStatement(stmt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scitt.ParseReceipt(receipt)
	if err != nil {
		t.Fatal(err)
	}
	root, err := r.Root(scitt.LeafHash(st.Registered(), scitt.LeafIETF))
	if err != nil {
		t.Fatal(err)
	}
	return scitt.VerifyCosigned(r.Checkpoint, r.Inclusion[0].TreeSize, root, w)
}

func entryIDOf(t *testing.T, stmt []byte) string {
	t.Helper()
	st, err := scitt.ParseStatement(stmt)
	if err != nil {
		t.Fatal(err)
	}
	e := st.EntryHash()
	return hex.EncodeToString(e[:])
}

func newIssuer(t *testing.T) (*keys.PrivateKey, string) {
	t.Helper()
	k, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	return k, writeKey(t, t.TempDir(), "issuer.jwk", k)
}

func httptestServer(t *testing.T, svc *transparency.Service) *httptest.Server {
	return httptest.NewServer(svc.Handler(transparency.HandlerOptions{}))
}

func TestWitnessedReceiptsCarryCosignatures(t *testing.T) {
	e := newWitnessedEnv(t, false)
	ctx := t.Context()
	stmt := e.sign(t, "witnessed")
	reg, err := e.client.Register(ctx, stmt)
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, stmt, reg.Receipt, e.svc.Keys()) // still a valid RFC 9942 receipt
	names, err := cosignersOf(t, stmt, reg.Receipt, e.trusted(t, 2))
	if err != nil || len(names) != 2 {
		t.Fatalf("cosigned by %v: %v", names, err)
	}

	// Fail closed: with one witness stopped, no checkpoint is published, so
	// a new registration gets no receipt ...
	e.w[1].Down.Store(true)
	stmt2 := e.sign(t, "held")
	_, reg2, err := e.client.Submit(ctx, stmt2)
	if err != nil {
		t.Fatal(err)
	}
	if reg2 != nil && reg2.Receipt != nil {
		t.Fatal("a receipt was issued while a required witness was down (fail closed)")
	}
	time.Sleep(1500 * time.Millisecond)
	id, err := transparency.ParseEntryID(entryIDOf(t, stmt2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Receipt(ctx, id); !errors.Is(err, transparency.ErrPending) {
		t.Fatalf("receipt while a witness is down: %v, want ErrPending", err)
	}
	// ... until it is back.
	e.w[1].Down.Store(false)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rb, err := e.svc.AwaitReceipt(wctx, id)
	if err != nil {
		t.Fatalf("after the witness came back: %v", err)
	}
	if names, err := cosignersOf(t, stmt2, rb, e.trusted(t, 2)); err != nil || len(names) != 2 {
		t.Fatalf("cosigned by %v: %v", names, err)
	}
	if n := e.svc.UnwitnessedCheckpoints(); n != 0 {
		t.Fatalf("%d unwitnessed checkpoints published while failing closed", n)
	}
}

func TestWitnessFailOpenPublishesAndCounts(t *testing.T) {
	e := newWitnessedEnv(t, true)
	ctx := t.Context()
	if _, err := e.client.Register(ctx, e.sign(t, "both up")); err != nil {
		t.Fatal(err)
	}
	e.w[1].Down.Store(true)
	stmt := e.sign(t, "one down")
	reg, err := e.client.Register(ctx, stmt)
	if err != nil {
		t.Fatalf("fail open: %v", err)
	}
	names, err := cosignersOf(t, stmt, reg.Receipt, e.trusted(t, 2))
	if !errors.Is(err, scitt.ErrWitness) || len(names) != 1 {
		t.Fatalf("cosigned by %v (%v), want only the witness that is up", names, err)
	}
	if e.svc.UnwitnessedCheckpoints() == 0 {
		t.Fatal("a checkpoint published below the threshold was not counted")
	}
}

// TestIndependentWitnesses runs two litewitness processes (filippo.io/
// torchwood, installed from the Go module proxy) with a threshold of 2:
// receipts carry both cosignatures; with one stopped, publication holds
// (fail closed).
func TestIndependentWitnesses(t *testing.T) {
	var lws []*witnesstest.Litewitness
	e := openWitnessed(t, false, func(vkey string) []transparency.WitnessEndpoint {
		var out []transparency.WitnessEndpoint
		for _, name := range []string{"lw1.test/witness", "lw2.test/witness"} {
			lw := witnesstest.StartLitewitness(t, name, vkey)
			lws = append(lws, lw)
			out = append(out, transparency.WitnessEndpoint{URL: lw.URL, Key: lw.VKey})
		}
		return out
	})
	ctx := t.Context()
	for i := range 3 {
		stmt := e.sign(t, fmt.Sprint("independent ", i))
		reg, err := e.client.Register(ctx, stmt)
		if err != nil {
			t.Fatal(err)
		}
		names, err := cosignersOf(t, stmt, reg.Receipt, e.trusted(t, 2))
		if err != nil || len(names) != 2 {
			t.Fatalf("receipt %d cosigned by %v: %v", i, names, err)
		}
	}
	lws[1].Stop()
	stmt := e.sign(t, "held by a stopped litewitness")
	id, err := transparency.ParseEntryID(entryIDOf(t, stmt))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.Submit(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := e.svc.AwaitReceipt(wctx, id); !errors.Is(err, transparency.ErrPending) {
		t.Fatalf("with a required witness stopped: %v, want ErrPending (publication held)", err)
	}
	// Back: the held checkpoint is cosigned and published.
	lws[1].Start(t)
	wctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rb, err := e.svc.AwaitReceipt(wctx, id)
	if err != nil {
		t.Fatalf("after the witness restarted: %v", err)
	}
	if names, err := cosignersOf(t, stmt, rb, e.trusted(t, 2)); err != nil || len(names) != 2 {
		t.Fatalf("cosigned by %v: %v", names, err)
	}
}

// TestWitnessesRefuseASplitView builds a split view: the data directory of
// a witnessed log is copied and the copy (same key, same origin) grows
// differently. The witnesses refuse to cosign the fork's checkpoints (it
// publishes them failing open), so its receipts fail the witness check the
// gate runs (scitt.VerifyCosigned), and so does a fork receipt carrying the
// honest log's cosigned checkpoint.
func TestWitnessesRefuseASplitView(t *testing.T) {
	a := newWitnessedEnv(t, false)
	ctx := t.Context()
	if _, err := a.client.Register(ctx, a.sign(t, "before the fork")); err != nil {
		t.Fatal(err)
	}
	a.srv.Close()
	if err := a.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	forkDir := filepath.Join(t.TempDir(), "fork")
	if err := os.CopyFS(forkDir, os.DirFS(a.dir)); err != nil {
		t.Fatal(err)
	}
	open := func(dir string, failOpen bool) (*transparency.Service, *scrapi.Client) {
		pol, err := transparency.NewPolicy(transparency.PolicyConfig{}, []string{writeKey(t, t.TempDir(), "i.jwk", a.issuer)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		wit := &transparency.Witnessing{Threshold: 2, FailOpen: failOpen, Timeout: "2s"}
		for _, w := range a.w {
			wit.Witnesses = append(wit.Witnesses, transparency.WitnessEndpoint{URL: w.URL, Key: w.VKey})
		}
		svc, err := transparency.Open(ctx, transparency.Options{Dir: dir, Policy: pol, Issuer: "https://ts.test", Witnessing: wit})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptestServer(t, svc)
		t.Cleanup(func() { srv.Close(); _ = svc.Close(context.Background()) })
		c, err := scrapi.NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return svc, c
	}
	_, honest := open(a.dir, false)
	fork, forked := open(forkDir, true)

	hs := a.sign(t, "honest")
	hreg, err := honest.Register(ctx, hs)
	if err != nil {
		t.Fatal(err)
	}
	if names, err := cosignersOf(t, hs, hreg.Receipt, a.trusted(t, 2)); err != nil || len(names) != 2 {
		t.Fatalf("honest log cosigned by %v: %v", names, err)
	}
	fs := a.sign(t, "forked")
	freg, err := forked.Register(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := scitt.ParseReceipt(freg.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := scitt.ParseReceipt(hreg.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Inclusion[0].TreeSize != hr.Inclusion[0].TreeSize {
		t.Fatalf("the two views have sizes %d and %d; the test wants one size, two roots", fr.Inclusion[0].TreeSize, hr.Inclusion[0].TreeSize)
	}
	// A valid receipt of the fork (same service key: a split view)...
	verifyReceipt(t, fs, freg.Receipt, fork.Keys())
	// ... whose checkpoint no witness cosigned,
	if names, err := cosignersOf(t, fs, freg.Receipt, a.trusted(t, 2)); !errors.Is(err, scitt.ErrWitness) || len(names) != 0 {
		t.Fatalf("fork receipt: cosigned by %v (%v), want none", names, err)
	}
	if fork.UnwitnessedCheckpoints() == 0 {
		t.Fatal("the fork's uncosigned checkpoint was not counted")
	}
	// ... nor does the honest cosigned checkpoint fit it.
	grafted, err := fr.WithCheckpoint(hr.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cosignersOf(t, fs, grafted, a.trusted(t, 2)); !errors.Is(err, scitt.ErrWitness) {
		t.Fatalf("fork receipt with the honest checkpoint: %v, want ErrWitness", err)
	}
}
