package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// userCommands lists every command a user runs, without cobra's own help and
// completion commands.
func userCommands(t *testing.T) []*cobra.Command {
	t.Helper()
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.HasParent() {
			cmds = append(cmds, c)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
	if len(cmds) < 20 {
		t.Fatalf("command tree walk found only %d commands", len(cmds))
	}
	return cmds
}

// TestEveryCommandHasExample: every command's --help shows an Example, and
// every example line runs an existing command with flags it has.
func TestEveryCommandHasExample(t *testing.T) {
	root := newRootCmd()
	for _, c := range userCommands(t) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no Example in its help", c.CommandPath())
			continue
		}
		for _, line := range strings.Split(c.Example, "\n") {
			line, _, _ = strings.Cut(strings.TrimSpace(line), "#")
			words := strings.Fields(strings.Split(line, "|")[0])
			for len(words) > 0 && strings.Contains(words[0], "=") { // VAR=value prefix
				words = words[1:]
			}
			if len(words) == 0 {
				continue
			}
			if words[0] != "trustfabric" {
				t.Errorf("%s: example line %q does not run trustfabric", c.CommandPath(), line)
				continue
			}
			target, rest, err := root.Find(words[1:])
			if err != nil || (target == root && (len(rest) == 0 || !strings.HasPrefix(rest[0], "-"))) {
				t.Errorf("%s: example %q: no such command", c.CommandPath(), line)
				continue
			}
			for _, w := range rest {
				if !strings.HasPrefix(w, "--") {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimPrefix(w, "--"), "=")
				if name != "help" && name != "version" && target.Flags().Lookup(name) == nil {
					t.Errorf("%s: example %q uses --%s, which %s does not have", c.CommandPath(), line, name, target.CommandPath())
				}
			}
		}
	}
}

// TestOutputFlag: wherever --output exists it takes text or json only, with
// the same shorthand; the commands that print a result have it.
func TestOutputFlag(t *testing.T) {
	want := map[string]bool{"attach": true, "attest": true, "discover": true, "inspect": true, "key generate": true,
		"policy check": true, "register": true, "verify": true, "version": true, "credential issue": true,
		"statement verify": true, "receipt verify": true, "bench register": true}
	for _, c := range userCommands(t) {
		p := strings.TrimPrefix(c.CommandPath(), "trustfabric ")
		f := c.Flags().Lookup("output")
		if want[p] && f == nil {
			t.Errorf("%s has no --output", p)
		}
		if f == nil {
			continue
		}
		if f.Shorthand != "o" || f.Value.Set("yaml") == nil || f.Value.Set("json") != nil {
			t.Errorf("%s: --output is not the shared text|json flag", p)
		}
	}
}

// TestJSONOutputs parses the --output json of commands that need no service.
func TestJSONOutputs(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.jwk"), filepath.Join(dir, "k.pub.jwk")
	var key struct{ Alg, KID, Private, Public string }
	if err := json.Unmarshal([]byte(mustRun(t, "key", "generate", "--out", priv, "--public-out", pub, "-o", "json")), &key); err != nil {
		t.Fatal(err)
	}
	if key.Alg != "ES256" || len(key.KID) != 64 || key.Private != priv || key.Public != pub {
		t.Errorf("key generate --output json = %+v", key)
	}
	pol := filepath.Join(dir, "policy.yaml")
	writeFile(t, pol, `apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: https://ts.example.org
    keys: [k.pub.jwk]
issuers:
  - issuer: https://ci.example.org
    keys: [k.pub.jwk]
workloads:
  - exact: https://ci.example.org
    selfReportedProvenance: true
`)
	var check struct {
		File   string
		Valid  bool
		SHA256 string
	}
	if err := json.Unmarshal([]byte(mustRun(t, "policy", "check", pol, "--output", "json")), &check); err != nil {
		t.Fatal(err)
	}
	if check.File != pol || !check.Valid || len(check.SHA256) != 64 {
		t.Errorf("policy check --output json = %+v", check)
	}
}

// TestEnvDefaults: TRUSTFABRIC_TS_URL, TRUSTFABRIC_IDENTITY_SERVER and
// TRUSTFABRIC_POLICY give the defaults of --ts, --identity-server/--server and
// --policy; a flag on the command line wins; the help names the variable.
func TestEnvDefaults(t *testing.T) {
	env := map[string]string{"TRUSTFABRIC_TS_URL": "https://ts.example", "TRUSTFABRIC_IDENTITY_SERVER": "https://id.example",
		"TRUSTFABRIC_POLICY": "p.yaml"}
	for _, tc := range []struct {
		args []string
		flag string
		want string
	}{
		{[]string{"attest", "img"}, "ts", "https://ts.example"},
		{[]string{"attest", "img", "--ts", "https://other.example"}, "ts", "https://other.example"},
		{[]string{"attest", "img"}, "identity-server", "https://id.example"},
		{[]string{"identity"}, "server", "https://id.example"},
		{[]string{"register", "s.cose"}, "ts", "https://ts.example"},
		{[]string{"bench", "register"}, "ts", "https://ts.example"},
		{[]string{"verify", "img"}, "policy", "p.yaml"},
	} {
		root := newRootCmd()
		c, rest, err := root.Find(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ParseFlags(rest); err != nil {
			t.Fatal(err)
		}
		if err := applyEnvDefaults(c, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		if got := c.Flags().Lookup(tc.flag).Value.String(); got != tc.want {
			t.Errorf("%v: --%s = %q, want %q", tc.args, tc.flag, got, tc.want)
		}
		if u := c.Flags().Lookup(tc.flag).Usage; !strings.Contains(u, "$TRUSTFABRIC_") {
			t.Errorf("%v: --%s help %q does not name its variable", tc.args, tc.flag, u)
		}
	}

	// End to end: the variable satisfies a required flag (verify --policy).
	t.Setenv("TRUSTFABRIC_POLICY", filepath.Join(t.TempDir(), "missing.yaml"))
	code, _, stderr := tf(t, "verify", "localhost:5000/app@sha256:"+strings.Repeat("0", 64))
	if code != exitUsage || strings.Contains(stderr, "required flag") || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("verify with $TRUSTFABRIC_POLICY: exit %d, %s", code, stderr)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
