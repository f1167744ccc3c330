package transparency_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
)

// A replica child is this test binary run as `serve --storage aws`.
const (
	replicaDirEnv    = "TRANSPARENCY_REPLICA_CHILD_DIR"
	replicaKeyEnv    = "TRANSPARENCY_REPLICA_CHILD_KEY"
	replicaTrustEnv  = "TRANSPARENCY_REPLICA_CHILD_TRUST"
	replicaDSNEnv    = "TRANSPARENCY_REPLICA_CHILD_DSN"
	replicaPrefixEnv = "TRANSPARENCY_REPLICA_CHILD_PREFIX"
)

// runReplicaChild runs a replica when this process is one; it does not return
// then.
func runReplicaChild() {
	dir := os.Getenv(replicaDirEnv)
	if dir == "" {
		return
	}
	err := server.Run(context.Background(), server.Config{
		Addr: "127.0.0.1:0", Dir: dir, TrustKeys: []string{os.Getenv(replicaTrustEnv)}, Issuer: "https://replicas.test",
		KeyFile: os.Getenv(replicaKeyEnv),
		Storage: transparency.StorageConfig{Kind: server.StorageAWS, DB: os.Getenv(replicaDSNEnv),
			S3Bucket: os.Getenv(awstest.EnvBucket), S3Endpoint: os.Getenv(awstest.EnvEndpoint), S3PathStyle: true,
			S3Prefix: os.Getenv(replicaPrefixEnv), ClaimTimeout: "3s"},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, func(addr string) { fmt.Printf("listening on %s\n", addr) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func startReplica(t *testing.T, tg awstest.Target, dir, key, trust string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replicaDirEnv+"="+dir, replicaKeyEnv+"="+key, replicaTrustEnv+"="+trust,
		replicaDSNEnv+"="+tg.DSN, replicaPrefixEnv+"="+tg.Prefix)
	return runChild(t, cmd)
}

// TestReplicas starts two `serve --storage aws` replicas on one MariaDB + S3
// store, registers through both (the same statements through each, at once),
// SIGKILLs one mid-load, and checks on the survivor that every acknowledged
// registration has its entry and a verifying receipt, that duplicates got one
// entry, and that every checkpoint seen from either replica is consistent
// with every later one (one log).
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("replica test starts server processes")
	}
	tg := awstest.New(t)
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	kdir := t.TempDir()
	trust := writeKey(t, kdir, "issuer.jwk", issuer)
	svc, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := svc.MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(kdir, "service.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	reps := []*child{
		startReplica(t, tg, dirs[0], keyFile, trust),
		startReplica(t, tg, dirs[1], keyFile, trust),
	}
	clients := make([]*scrapi.Client, 2)
	for i, r := range reps {
		clients[i], _ = scrapi.NewClient(r.url, scrapi.WithRetries(0), scrapi.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	}
	async, _ := scrapi.NewClient(reps[0].url, scrapi.WithRetries(0), scrapi.WithRespondAsync())

	type acked struct {
		stmt, receipt []byte
		id            string
		via           int
	}
	type seenCP struct {
		size uint64
		root []byte
		from int
	}
	var mu sync.Mutex
	var receipts, accepted []acked
	dups := map[string][]uint64{} // entry id -> leaf index of each receipt
	var checkpoints []seenCP

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	sign := func(subject string) []byte {
		stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.test", Subject: subject}, []byte(subject))
		if err != nil {
			return nil
		}
		return stmt
	}
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				stmt := sign(fmt.Sprintf("w%d/%d", w, i))
				if stmt == nil {
					return
				}
				if w == 0 { // 303s from the replica that will die
					loc, _, err := async.Submit(ctx, stmt)
					if err == nil {
						mu.Lock()
						accepted = append(accepted, acked{stmt: stmt, id: loc[strings.LastIndex(loc, "/")+1:], via: 0})
						mu.Unlock()
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				via := (w + i) % 2
				reg, err := clients[via].Register(ctx, stmt)
				if err != nil {
					continue
				}
				mu.Lock()
				receipts = append(receipts, acked{stmt, reg.Receipt, reg.EntryID, via})
				mu.Unlock()
			}
		})
	}
	// The same statement through both replicas at once.
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				stmt := sign(fmt.Sprintf("dup%d/%d", w, i))
				if stmt == nil {
					return
				}
				var inner sync.WaitGroup
				for via := range 2 {
					inner.Go(func() {
						reg, err := clients[via].Register(ctx, stmt)
						if err != nil {
							return
						}
						r, err := scitt.ParseReceipt(reg.Receipt)
						if err != nil || len(r.Inclusion) != 1 {
							t.Errorf("receipt of a duplicate: %v", err)
							return
						}
						mu.Lock()
						receipts = append(receipts, acked{stmt, reg.Receipt, reg.EntryID, via})
						dups[reg.EntryID] = append(dups[reg.EntryID], r.Inclusion[0].LeafIndex)
						mu.Unlock()
					})
				}
				inner.Wait()
			}
		})
	}
	for i, r := range reps {
		wg.Go(func() {
			for ctx.Err() == nil {
				if raw, err := httpGet(r.url + "/checkpoint"); err == nil {
					cp := parseCheckpoint(t, raw)
					mu.Lock()
					checkpoints = append(checkpoints, seenCP{cp.Size, cp.Hash, i})
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(receipts)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := reps[0].cmd.Process.Kill(); err != nil { // SIGKILL mid-load
		t.Fatal(err)
	}
	reps[0].cmd.Wait()
	time.Sleep(300 * time.Millisecond) // the survivor keeps taking load
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(receipts) < 100 || len(dups) < 5 {
		t.Fatalf("only %d receipts (%d duplicated statements) before the kill; the load did not run", len(receipts), len(dups))
	}
	var viaDead int
	for _, a := range receipts {
		if a.via == 0 {
			viaDead++
		}
	}
	t.Logf("before SIGKILL: %d receipts (%d from the killed replica), %d accepted (303) by it, %d duplicated statements, %d checkpoints seen",
		len(receipts), viaDead, len(accepted), len(dups), len(checkpoints))

	surv := reps[1]
	c, _ := scrapi.NewClient(surv.url, scrapi.WithBackoff(20*time.Millisecond, 500*time.Millisecond))
	rctx, rcancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer rcancel()
	ks, err := c.Keys(rctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range receipts {
		verifyReceipt(t, a.stmt, a.receipt, ks)
		r, err := c.Receipt(rctx, a.id)
		if err != nil {
			t.Fatalf("acknowledged entry %s (via replica %d) has no receipt from the survivor: %v", a.id, a.via, err)
		}
		verifyReceipt(t, a.stmt, r, ks)
	}
	for _, a := range accepted {
		r, err := c.Receipt(rctx, a.id)
		if err != nil {
			t.Fatalf("entry %s accepted (303) by the killed replica has no receipt from the survivor: %v", a.id, err)
		}
		verifyReceipt(t, a.stmt, r, ks)
	}
	for id, idx := range dups {
		for _, i := range idx[1:] {
			if i != idx[0] {
				t.Fatalf("statement %s registered through both replicas got two entries: leaf indices %v", id, idx)
			}
		}
	}

	// One log: every checkpoint seen from either replica is consistent with
	// every later one (the latest, through a consistency receipt; same size,
	// same root).
	raw, err := httpGet(surv.url + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	latest := parseCheckpoint(t, raw)
	roots := map[uint64][]byte{}
	sort.Slice(checkpoints, func(i, j int) bool { return checkpoints[i].size < checkpoints[j].size })
	for _, cp := range checkpoints {
		if r, ok := roots[cp.size]; ok {
			if !bytes.Equal(r, cp.root) {
				t.Fatalf("two roots for tree size %d (a forked log)", cp.size)
			}
			continue
		}
		roots[cp.size] = cp.root
		if cp.size == 0 || cp.size == latest.Size {
			if cp.size == latest.Size && !bytes.Equal(cp.root, latest.Hash) {
				t.Fatalf("two roots for tree size %d", cp.size)
			}
			continue
		}
		if cp.size > latest.Size {
			t.Fatalf("checkpoint of size %d seen from replica %d, but the survivor's latest is %d", cp.size, cp.from, latest.Size)
		}
		b, err := httpGet(fmt.Sprintf("%s/consistency?from=%d&to=%d", surv.url, cp.size, latest.Size))
		if err != nil {
			t.Fatalf("consistency %d→%d: %v", cp.size, latest.Size, err)
		}
		cr, err := scitt.ParseReceipt(b)
		if err != nil {
			t.Fatal(err)
		}
		newRoot, err := cr.VerifyConsistency(cp.root, ks)
		if err != nil {
			t.Fatalf("checkpoint %d seen from replica %d is not consistent with the latest (%d): %v", cp.size, cp.from, latest.Size, err)
		}
		if !bytes.Equal(newRoot, latest.Hash) {
			t.Fatal("consistency receipt root differs from the published checkpoint")
		}
	}
	var from [2]int
	for _, cp := range checkpoints {
		from[cp.from]++
	}
	if from[0] == 0 || from[1] == 0 {
		t.Fatalf("checkpoints seen per replica: %v; want some from each", from)
	}

	// The killed replica restarts on the same state with no repair step and
	// serves the registrations it had accepted, and new ones.
	back := startReplica(t, tg, dirs[0], keyFile, trust)
	bc, _ := scrapi.NewClient(back.url, scrapi.WithBackoff(20*time.Millisecond, 500*time.Millisecond))
	for _, a := range accepted {
		r, err := bc.Receipt(rctx, a.id)
		if err != nil {
			t.Fatalf("restarted replica: entry %s it had accepted: %v", a.id, err)
		}
		verifyReceipt(t, a.stmt, r, ks)
	}
	fresh, err := scitt.SignStatement(rctx, issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "after the restart"}, []byte("after the restart"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bc.Register(rctx, fresh)
	if err != nil {
		t.Fatalf("restarted replica: registration: %v", err)
	}
	verifyReceipt(t, fresh, reg.Receipt, ks)
}
