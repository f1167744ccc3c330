package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/witnesstest"
)

// writeWitnessPolicy writes to path the policy base (the quickstart's)
// with `witnesses: {keys, threshold: 2}` for its Transparency Service.
func writeWitnessPolicy(t *testing.T, base []byte, path string, keys ...string) string {
	t.Helper()
	return writeWitnessPolicyN(t, base, path, 2, keys...)
}

// writeWitnessPolicyN is writeWitnessPolicy with another threshold.
func writeWitnessPolicyN(t *testing.T, base []byte, path string, threshold int, keys ...string) string {
	t.Helper()
	section := fmt.Sprintf("    leaf: ietf\n    witnesses:\n      threshold: %d\n      keys:\n", threshold)
	for _, k := range keys {
		section += "        - " + k + "\n"
	}
	doc := strings.Replace(string(base), "    leaf: ietf\n", section, 1)
	if doc == string(base) {
		t.Fatal("the quickstart policy changed shape")
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// NetnsRequiredEnv, set to 1 (.ci/run does), makes TestVerifyOfflineWithoutNetwork
// fail instead of skipping when it cannot run the CLI without a network.
const netnsRequiredEnv = "TRUSTFABRIC_NETNS_REQUIRED"

// noNetwork returns the command prefix that runs a program in a new network
// namespace (no interface but a loopback that is down: every dial fails),
// `unshare -rn`, or skips the test.
func noNetwork(t *testing.T) []string {
	t.Helper()
	path, err := exec.LookPath("unshare")
	if err == nil {
		err = exec.Command(path, "-rn", "true").Run()
	}
	if err != nil {
		msg := "no network namespace for the CLI (util-linux `unshare -rn` and unprivileged user namespaces, or root): " + err.Error()
		if os.Getenv(netnsRequiredEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return []string{path, "-rn"}
}

// TestVerifyOfflineWithoutNetwork: `verify --offline --oci-layout DIR` runs
// as a child process in a network namespace of its own, where every
// connection fails (checked first: the same verify against the registry
// fails there while the registry is up). The image and its referrers come
// from an OCI image layout, the service's keys, the WIT bundle and the
// witness keys from files; the witnesses and every service are stopped. The
// layout is made by `discover --save-layout`.
// Threshold 2 of the two witnesses that cosigned allows; a policy trusting
// another witness instead denies, naming the witnesses check.
func TestVerifyOfflineWithoutNetwork(t *testing.T) {
	sandbox := noNetwork(t)
	ctx := context.Background()
	dir := t.TempDir()
	var ws []*witnesstest.Witness
	for _, name := range []string{"w1.test", "w2.test"} {
		w, err := witnesstest.New(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		ws = append(ws, w)
	}
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env"),
		Witnesses: func(vkey string) ([]transparency.WitnessEndpoint, error) {
			var out []transparency.WitnessEndpoint
			for _, w := range ws {
				if err := w.AddLog(vkey); err != nil {
					return nil, err
				}
				out = append(out, transparency.WitnessEndpoint{URL: w.URL, Key: w.VKey})
			}
			return out, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	for k, v := range env.Vars {
		t.Setenv(k, v)
	}
	mustRun(t, "attest", env.ImageTag, "--ts", env.TSURL, "--identity-server", env.IdentityURL)
	p, err := quickstart.WritePolicy(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	witnessed := writeWitnessPolicy(t, base, filepath.Join(dir, "witnessed.yaml"), ws[0].VKey, ws[1].VKey)
	stranger, err := witnesstest.New("stranger.test")
	if err != nil {
		t.Fatal(err)
	}
	stranger.Close()
	untrusted := writeWitnessPolicy(t, base, filepath.Join(dir, "untrusted.yaml"), ws[0].VKey, stranger.VKey)
	// The layout, as a user makes it on a machine with network.
	layout := filepath.Join(dir, "layout")
	mustRun(t, "discover", env.ImageTag, "--save-layout", layout)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "trustfabric") // TestMain runs main() under this name
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(sandbox[0], append(append(sandbox[1:], bin), args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run %v: %v", cmd.Args, err)
		return 0, ""
	}

	// The sandbox has no network: the registry is up, verify cannot reach it.
	if code, out := cli("verify", env.Image, "--policy", witnessed, "--offline"); code != exitUsage {
		t.Fatalf("verify from the registry inside the sandbox: exit %d, want %d (unreachable)\n%s", code, exitUsage, out)
	}
	if code, out, errOut := tf(t, "verify", env.Image, "--policy", witnessed, "--offline"); code != 0 {
		t.Fatalf("the same verify outside the sandbox: exit %d\n%s%s", code, out, errOut)
	}

	// Everything stopped.
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.Close()
	}
	code, out := cli("verify", env.Image, "--policy", witnessed, "--offline", "--oci-layout", layout)
	if code != exitOK || !strings.HasPrefix(out, "ALLOW ") || !strings.Contains(out, "ok   witnesses: ") {
		t.Errorf("verify --offline --oci-layout without network, threshold 2: exit %d\n%s", code, out)
	}
	code, out = cli("verify", env.Image, "--policy", untrusted, "--offline", "--oci-layout", layout)
	if code != exitInvalid || !strings.HasPrefix(out, "DENY ") || !strings.Contains(out, "FAIL witnesses: ") {
		t.Errorf("verify with an untrusted witness key, without network: exit %d\n%s", code, out)
	}
	// A layout without the image's referrers: nothing to allow on.
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(filepath.Join(empty, "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`} {
		if err := os.WriteFile(filepath.Join(empty, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := cli("verify", env.Image, "--policy", witnessed, "--offline", "--oci-layout", empty); code != exitInvalid || !strings.HasPrefix(out, "DENY ") {
		t.Errorf("verify on an empty layout: exit %d\n%s", code, out)
	}
}
