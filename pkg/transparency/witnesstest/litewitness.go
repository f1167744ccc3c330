package witnesstest

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Litewitness is an independent witness, filippo.io/torchwood's litewitness
// (C2SP tlog-witness, SQLite state, key in a dedicated ssh-agent), running
// on loopback as a child process.
type Litewitness struct {
	// URL is its root URL; VKey its cosignature/v1 verifier key.
	URL, VKey string

	cmd, agent *exec.Cmd
	args       []string
	stderr     *lockedBuffer
}

// LitewitnessEnv names the directory holding the litewitness and witnessctl
// binaries; default $HOME/.cache/trustfabric/litewitness/v0.6.1 (where
// .ci/witness.sh installs them), then $HOME/.cache/trustfabric/bin, then
// $PATH.
const LitewitnessEnv = "TRUSTFABRIC_LITEWITNESS_DIR"

// findTool finds a binary in LitewitnessEnv, the cache, or PATH.
func findTool(name string) (string, error) {
	dirs := []string{os.Getenv(LitewitnessEnv)}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "trustfabric", "litewitness", "v0.6.1"),
			filepath.Join(home, ".cache", "trustfabric", "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// StartLitewitness starts a litewitness named name that trusts the log
// with the signed-note verifier key logVKey. It skips the test with a clear
// message when litewitness, witnessctl or OpenSSH's ssh-agent are missing
// (.ci/run installs them and fails if the test skips). The witness and its
// agent are stopped when the test ends.
func StartLitewitness(t testing.TB, name, logVKey string) *Litewitness {
	t.Helper()
	var bins [5]string
	for i, n := range []string{"litewitness", "witnessctl", "ssh-agent", "ssh-add", "ssh-keygen"} {
		p, err := findTool(n)
		if err != nil {
			t.Skipf("independent witness not available: %s not found (install with .ci/witness.sh: go install filippo.io/torchwood/cmd/{litewitness,witnessctl}@v0.6.1 into $HOME/.cache/trustfabric/bin; OpenSSH client for ssh-agent)", n)
		}
		bins[i] = p
	}
	lw, ctl, agent, add, keygen := bins[0], bins[1], bins[2], bins[3], bins[4]
	// A short directory: ssh-agent socket paths are limited to ~100 bytes.
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		c.Env = append(os.Environ(), env...)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	key := filepath.Join(dir, "key")
	run(nil, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", key)
	fp := strings.Fields(run(nil, keygen, "-l", "-E", "sha256", "-f", key+".pub"))
	if len(fp) < 2 {
		t.Fatalf("ssh-keygen -l printed %q", fp)
	}
	sock := filepath.Join(dir, "a")
	w := &Litewitness{agent: exec.Command(agent, "-D", "-a", sock)}
	if err := w.agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.agent.Process.Kill(); _ = w.agent.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
	}
	run([]string{"SSH_AUTH_SOCK=" + sock}, add, "-q", key)

	db := filepath.Join(dir, "w.db")
	origin, _, _ := strings.Cut(logVKey, "+")
	run(nil, ctl, "add-log", "-db", db, "-origin", origin)
	run(nil, ctl, "add-key", "-db", db, "-origin", origin, "-key", strings.TrimSpace(logVKey))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w.args = []string{lw, "-db", db, "-name", name, "-key", fp[1], "-ssh-agent", sock, "-listen", addr}
	w.URL = "http://" + addr
	t.Cleanup(func() { w.Stop() })
	w.Start(t)
	return w
}

// Start starts the witness again after Stop (same database and key).
func (w *Litewitness) Start(t testing.TB) {
	t.Helper()
	w.stderr = &lockedBuffer{}
	w.cmd = exec.Command(w.args[0], w.args[1:]...)
	w.cmd.Stderr = w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	vkeyRe := regexp.MustCompile(`vkey=(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := vkeyRe.FindStringSubmatch(w.stderr.String()); m != nil && w.VKey == "" {
			w.VKey = strings.Trim(m[1], `"`)
		}
		if w.VKey != "" && reachable(w.URL) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("litewitness did not start:\n%s", w.stderr.String())
		}
	}
}

// Stop stops the witness (SIGINT, then wait); it can be stopped once.
func (w *Litewitness) Stop() {
	if w.cmd == nil || w.cmd.Process == nil || w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
}

func reachable(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
