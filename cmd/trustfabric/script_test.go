package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
		resp, err := http.Get(args[0])
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
