package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
)

// TestMain lets the test binary act as the real trustfabric program: a
// script's `exec trustfabric …` runs main() in a child process of this
// binary (testscript.Main), so scripts see real exit codes and real output.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"trustfabric": main})
}

// TestScripts runs testdata/script/*.txt: one script per command, each
// covering its happy path, its usage errors (exit 2) and, where the command
// can refuse, its exit 1. Services the scripts need are either the real
// `trustfabric serve` started in the background, or in-process fakes given
// as script commands (registry, fakegithub).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Cmds:                scriptCmds,
	})
}

// scriptCmds are the commands the scripts have on top of testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"exits":      cmdExits,
	"freeport":   cmdFreeport,
	"waitfor":    cmdWaitfor,
	"registry":   cmdRegistry,
	"pushimage":  cmdPushImage,
	"fakegithub": cmdFakeGitHub,
	"httpget":    cmdHTTPGet,
	"envsubst":   cmdEnvsubst,
	"tlscert":    cmdTLSCert,
	"httppost":   cmdHTTPPost,
	"waitfile":   cmdWaitfile,
	"sourceenv":  cmdSourceenv,
	"runsignal":  cmdRunsignal,
}

// exits CODE PROGRAM [ARGS...] runs PROGRAM like exec and checks its exit
// status is exactly CODE (exec only tells zero from non-zero). Its stdout
// and stderr are kept for the stdout and stderr commands.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// freeport VAR sets VAR to a free loopback HOST:PORT.
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], ln.Addr().String())
	ts.Check(ln.Close())
}

// waitfor URL polls URL until it answers 200 (10 s at most): the
// ready-wait for a background `trustfabric serve`.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfor URL")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := loopbackClient.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s not ready after 10s: %v", args[0], err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// registry starts an in-memory olareg registry (OCI 1.1 referrers API) on
// loopback for the rest of the script and sets REGISTRY to its host:port.
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: registry")
	}
	reg := ocitest.NewOlareg(nil)
	ts.Defer(reg.Close)
	ts.Setenv("REGISTRY", reg.Host)
}

// pushimage REPO:TAG pushes a small random image and sets DIGEST to its
// digest (sha256:…) and DIGEST_HEX to the hex part.
func cmdPushImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pushimage REPO:TAG")
	}
	tag, err := name.NewTag(args[0], name.Insecure)
	ts.Check(err)
	img, err := random.Image(256, 1)
	ts.Check(err)
	ts.Check(remote.Write(tag, img, remote.WithContext(context.Background())))
	d, err := img.Digest()
	ts.Check(err)
	ts.Setenv("DIGEST", d.String())
	ts.Setenv("DIGEST_HEX", d.Hex)
}

// fakegithub starts the GitHub Actions OIDC fake (issuer and runner token
// endpoint) and puts a job's runner variables in the script environment,
// with GITHUB_ISSUER set to the fake issuer's URL.
func cmdFakeGitHub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: fakegithub")
	}
	gh, err := oidctest.NewGitHub()
	ts.Check(err)
	ts.Defer(gh.Close)
	for k, v := range gh.Env() {
		ts.Setenv(k, v)
	}
	ts.Setenv("GITHUB_ISSUER", gh.URL())
}

// httpget URL FILE writes the body of a 200 answer to FILE.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: httpget URL FILE")
	}
	resp, err := http.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ts.Check(err)
	if resp.StatusCode != http.StatusOK {
		ts.Fatalf("GET %s: %s", args[0], resp.Status)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
}

// envsubst FILE... replaces $VAR and ${VAR} in each file with the script's
// environment (files in the archive are not expanded by testscript).
func cmdEnvsubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: envsubst FILE...")
	}
	for _, f := range args {
		s := os.Expand(ts.ReadFile(f), ts.Getenv)
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(s), 0o644))
	}
}

// TestScriptsCoverEveryCommand keeps the scripts complete: every command of
// the cobra tree must be run by some script with `exec trustfabric PATH`
// (exit 0) and with `exits 2 trustfabric PATH` (a usage error).
func TestScriptsCoverEveryCommand(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "script", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		all.WriteByte('\n')
	}
	scripts := all.String()
	var walk func(c *cobra.Command)
	var cmds []*cobra.Command
	walk = func(c *cobra.Command) {
		cmds = append(cmds, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
	if len(cmds) < 20 {
		t.Fatalf("command tree walk found only %d commands", len(cmds))
	}
	for _, c := range cmds {
		p := strings.TrimSpace(strings.TrimPrefix(c.CommandPath(), "trustfabric"))
		var subs []string
		for _, s := range c.Commands() {
			subs = append(subs, s.Name())
		}
		words := ""
		if p != "" {
			words = `\s+` + strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
		}
		// covered reports whether some line runs exactly this command:
		// the word after its path is not one of its subcommands.
		covered := func(prefix string) bool {
			re := regexp.MustCompile(`(?m)^\s*` + prefix + ` trustfabric` + words + `(?:[ \t]+(\S+)|[ \t]*$)`)
			for _, m := range re.FindAllStringSubmatch(scripts, -1) {
				if !slices.Contains(subs, m[1]) {
					return true
				}
			}
			return false
		}
		if !covered("exec") {
			t.Errorf("no script runs `exec trustfabric %s` (its happy path)", p)
		}
		if !covered("exits 2") {
			t.Errorf("no script runs `exits 2 trustfabric %s` (its usage error)", p)
		}
	}
}

// loopbackClient is the scripts' HTTP client: it accepts any certificate,
// for the self-signed ones of tlscert on loopback.
var loopbackClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test certificates on loopback

// tlscert CERT KEY writes a self-signed serving certificate for 127.0.0.1
// and localhost, and its key, in PEM.
func cmdTLSCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tlscert CERT KEY")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	kb, err := x509.MarshalECPrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
}

// httppost URL BODYFILE OUTFILE POSTs BODYFILE as JSON and writes the body
// of a 200 answer to OUTFILE.
func cmdHTTPPost(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: httppost URL BODYFILE OUTFILE")
	}
	resp, err := loopbackClient.Post(args[0], "application/json", strings.NewReader(ts.ReadFile(args[1])))
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ts.Check(err)
	if resp.StatusCode != http.StatusOK {
		ts.Fatalf("POST %s: %s: %s", args[0], resp.Status, b)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o644))
}

// waitfile FILE waits (2 minutes at most) until FILE exists: the
// ready-wait for a background `trustfabric quickstart --serve`.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear within 2 minutes", args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sourceenv FILE sets the variables of FILE's `export K='V'` lines (the
// env.sh quickstart --serve writes) in the script's environment.
func cmdSourceenv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sourceenv FILE")
	}
	n := 0
	for _, line := range strings.Split(ts.ReadFile(args[0]), "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			ts.Fatalf("%s: malformed line %q", args[0], line)
		}
		ts.Setenv(k, strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'"))
		n++
	}
	if n == 0 {
		ts.Fatalf("%s exports nothing", args[0])
	}
}

// runsignal SIGNAL READYFILE PROGRAM [ARGS...] starts PROGRAM (from the
// script's PATH), waits (2 minutes at most) for READYFILE, sends SIGNAL
// (INT or TERM) and checks that PROGRAM exits 0 within 30 s. testscript's
// kill sends INT and KILL only.
func cmdRunsignal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: runsignal INT|TERM READYFILE PROGRAM [ARGS...]")
	}
	sig := map[string]os.Signal{"INT": os.Interrupt, "TERM": syscall.SIGTERM}[args[0]]
	if sig == nil {
		ts.Fatalf("runsignal: signal %q: want INT or TERM", args[0])
	}
	prog, err := lookPath(ts, args[2])
	ts.Check(err)
	cmd := exec.Command(prog, args[3:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = environ(ts)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	ts.Check(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(ts.MkAbs(args[1])); err == nil {
			break
		}
		select {
		case err := <-exited:
			ts.Fatalf("%s exited before %s appeared: %v\n%s", args[2], args[1], err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			ts.Fatalf("%s did not appear within 2 minutes\n%s", args[1], out.String())
		}
	}
	ts.Check(cmd.Process.Signal(sig))
	select {
	case err := <-exited:
		if err != nil {
			ts.Fatalf("%s after SIG%s: %v\n%s", args[2], args[0], err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		ts.Fatalf("%s still running 30s after SIG%s\n%s", args[2], args[0], out.String())
	}
	ts.Logf("%s", out.String())
}

// environ is the script's environment for a child process.
func environ(ts *testscript.TestScript) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// lookPath finds prog on the script's PATH.
func lookPath(ts *testscript.TestScript, prog string) (string, error) {
	for _, d := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(d, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not on the script's PATH", prog)
}
