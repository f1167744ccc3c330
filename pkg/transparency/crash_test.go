package transparency_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server"
)

// The crash test re-executes this test binary as the server.
const (
	childDirEnv   = "TRANSPARENCY_CRASH_CHILD_DIR"
	childTrustEnv = "TRANSPARENCY_CRASH_CHILD_TRUST"
)

func TestMain(m *testing.M) {
	runReplicaChild()
	if dir := os.Getenv(childDirEnv); dir != "" {
		err := server.Run(context.Background(), server.Config{
			Addr: "127.0.0.1:0", Dir: dir, TrustKeys: []string{os.Getenv(childTrustEnv)}, Issuer: "https://crash.test",
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		}, func(addr string) { fmt.Printf("listening on %s\n", addr) })
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type child struct {
	cmd  *exec.Cmd
	url  string
	errb *syncBuffer
}

func startChild(t *testing.T, dir, trust string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childTrustEnv+"="+trust)
	return runChild(t, cmd)
}

// runChild starts cmd, a server, and waits for its address.
func runChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, errb: &syncBuffer{}}
	cmd.Stderr = c.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- addr
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case addr := <-lines:
		c.url = "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start; stderr:\n%s", c.errb.String())
	}
	return c
}

type cpSeen struct {
	size uint64
	root []byte
}

// TestCrashRecovery kills the server with SIGKILL in the middle of
// concurrent registrations, restarts it on the same data directory, and
// checks that every registration answered with a receipt (201) or accepted
// (303) is in the log with a verifying receipt, and that the new checkpoint is
// consistent with every checkpoint published before the crash.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts server processes")
	}
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	trust := writeKey(t, t.TempDir(), "issuer.jwk", issuer)
	dir := t.TempDir()
	srv := startChild(t, dir, trust)

	syncClient, _ := scrapi.NewClient(srv.url, scrapi.WithRetries(0), scrapi.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	asyncClient, _ := scrapi.NewClient(srv.url, scrapi.WithRetries(0), scrapi.WithRespondAsync())
	type acked struct {
		stmt, receipt []byte
		id            string
	}
	var mu sync.Mutex
	var receipts []acked // answered with a receipt
	var accepted []acked // answered 303 (durable, pending)
	var checkpoints []cpSeen

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.test", Subject: fmt.Sprintf("w%d/%d", w, i)}, fmt.Appendf(nil, "payload %d %d", w, i))
				if err != nil {
					return
				}
				if w%8 == 0 {
					loc, _, err := asyncClient.Submit(ctx, stmt)
					if err != nil {
						continue
					}
					mu.Lock()
					accepted = append(accepted, acked{stmt: stmt, id: loc[strings.LastIndex(loc, "/")+1:]})
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
					continue
				}
				reg, err := syncClient.Register(ctx, stmt)
				if err != nil {
					continue
				}
				mu.Lock()
				receipts = append(receipts, acked{stmt, reg.Receipt, reg.EntryID})
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			if raw, err := httpGet(srv.url + "/checkpoint"); err == nil {
				cp := parseCheckpoint(t, raw)
				mu.Lock()
				if n := len(checkpoints); n == 0 || checkpoints[n-1].size != cp.Size {
					checkpoints = append(checkpoints, cpSeen{cp.Size, cp.Hash})
				}
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(receipts)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL mid-load
		t.Fatal(err)
	}
	srv.cmd.Wait()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(receipts) < 50 || len(checkpoints) < 2 {
		t.Fatalf("only %d receipts and %d checkpoints before the crash; the load did not run", len(receipts), len(checkpoints))
	}
	t.Logf("before SIGKILL: %d receipts, %d accepted (303), %d checkpoints (last size %d)", len(receipts), len(accepted), len(checkpoints), checkpoints[len(checkpoints)-1].size)

	srv2 := startChild(t, dir, trust)
	c2, _ := scrapi.NewClient(srv2.url, scrapi.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	rctx, rcancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer rcancel()
	keys, err := c2.Keys(rctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range receipts {
		verifyReceipt(t, a.stmt, a.receipt, keys) // the receipt given before the crash
		r, err := c2.Receipt(rctx, a.id)
		if err != nil {
			t.Fatalf("acknowledged entry %s lost after restart: %v", a.id, err)
		}
		verifyReceipt(t, a.stmt, r, keys)
	}
	for _, a := range accepted {
		r, err := c2.Receipt(rctx, a.id)
		if err != nil {
			t.Fatalf("entry %s accepted with 303 lost after restart: %v", a.id, err)
		}
		verifyReceipt(t, a.stmt, r, keys)
		stored, err := c2.Statement(rctx, a.id)
		if err != nil {
			t.Fatalf("statement of %s: %v", a.id, err)
		}
		parsed, _ := scitt.ParseStatement(a.stmt)
		if !bytes.Equal(stored, parsed.Registered()) {
			t.Fatalf("stored statement of %s differs", a.id)
		}
	}

	// The new checkpoint is consistent with every checkpoint seen before.
	raw, err := httpGet(srv2.url + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	latest := parseCheckpoint(t, raw)
	for _, old := range checkpoints {
		if old.size == 0 {
			continue // the empty tree is a prefix of every tree
		}
		if old.size > latest.Size {
			t.Fatalf("checkpoint shrank: %d before the crash, %d after", old.size, latest.Size)
		}
		if old.size == latest.Size {
			if !bytes.Equal(old.root, latest.Hash) {
				t.Fatalf("same size %d, different root after restart", old.size)
			}
			continue
		}
		b, err := httpGet(fmt.Sprintf("%s/consistency?from=%d&to=%d", srv2.url, old.size, latest.Size))
		if err != nil {
			t.Fatalf("consistency %d→%d: %v", old.size, latest.Size, err)
		}
		cr, err := scitt.ParseReceipt(b)
		if err != nil {
			t.Fatal(err)
		}
		newRoot, err := cr.VerifyConsistency(old.root, keys)
		if err != nil {
			t.Fatalf("checkpoint %d is not consistent with the new checkpoint %d: %v", old.size, latest.Size, err)
		}
		if !bytes.Equal(newRoot, latest.Hash) {
			t.Fatalf("consistency receipt root differs from the published checkpoint")
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "keys", "service.jwk")); err != nil || len(data) == 0 {
		t.Fatalf("service key missing after restart: %v", err)
	}
}

func httpGet(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return b, nil
}
