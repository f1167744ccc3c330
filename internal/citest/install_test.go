package citest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeRelease is what the fake GitHub serves for release v1.2.3 of acme/tf:
// the binary, its transparent statement (ASSET.scitt.cose) and the tag
// listing of GET /repos/acme/tf/tags.
type fakeRelease struct {
	listed, served []byte  // the committed checksum is of listed; served is the download (nil: 404)
	statement      []byte  // nil: 404
	tags           string  // JSON; empty: 404
	tagsAuth       *string // receives the Authorization header of the tag listing request
}

// serve copies the actions into a scratch repository whose checksums.txt
// lists the binary, and serves the release over TLS as GitHub's web and API
// hosts.
func (f fakeRelease) serve(t *testing.T) (dir string, env map[string]string) {
	t.Helper()
	root := repoRoot(t)
	dir = t.TempDir()
	copyTree(t, filepath.Join(root, "actions"), filepath.Join(dir, "actions"))
	copyFile(t, filepath.Join(root, "action.yml"), filepath.Join(dir, "action.yml"))
	asset := fmt.Sprintf("trustfabric_v1.2.3_%s_%s", runtime.GOOS, runtime.GOARCH)
	sum := sha256.Sum256(f.listed)
	cs, err := os.OpenFile(filepath.Join(dir, "actions", "lib", "checksums.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.WriteString(hex.EncodeToString(sum[:]) + "  " + asset + "\n"); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		switch r.URL.Path {
		case "/acme/tf/releases/download/v1.2.3/" + asset:
			body = f.served
		case "/acme/tf/releases/download/v1.2.3/" + asset + ".scitt.cose":
			body = f.statement
		case "/api/repos/acme/tf/tags":
			if f.tagsAuth != nil {
				*f.tagsAuth = r.Header.Get("Authorization")
			}
			if f.tags != "" {
				body = []byte(f.tags)
			}
		}
		if body == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, map[string]string{"GITHUB_SERVER_URL": srv.URL, "GITHUB_API_URL": srv.URL + "/api", "CURL_CA_BUNDLE": ca}
}

// tagsJSON is GitHub's tag listing (GET /repos/OWNER/REPO/tags), as the API
// prints it: a major tag on the same commit as the release, then the release.
func tagsJSON(sha string) string {
	return fmt.Sprintf(`[
  {"name": "v1", "zipball_url": "https://api.github.com/repos/acme/tf/zipball/refs/tags/v1",
   "tarball_url": "https://api.github.com/repos/acme/tf/tarball/refs/tags/v1",
   "commit": {"sha": "%[1]s", "url": "https://api.github.com/repos/acme/tf/commits/%[1]s"}, "node_id": "MDM6UmVmMQ=="},
  {"name": "v1.2.3", "zipball_url": "https://api.github.com/repos/acme/tf/zipball/refs/tags/v1.2.3",
   "tarball_url": "https://api.github.com/repos/acme/tf/tarball/refs/tags/v1.2.3",
   "commit": {"sha": "%[1]s", "url": "https://api.github.com/repos/acme/tf/commits/%[1]s"}, "node_id": "MDM6UmVmMg=="},
  {"name": "v1.2.2", "zipball_url": "https://api.github.com/repos/acme/tf/zipball/refs/tags/v1.2.2",
   "tarball_url": "https://api.github.com/repos/acme/tf/tarball/refs/tags/v1.2.2",
   "commit": {"sha": "%[2]s", "url": "https://api.github.com/repos/acme/tf/commits/%[2]s"}, "node_id": "MDM6UmVmMw=="}
]`, sha, strings.Repeat("e", 40))
}

// noGoEnv makes a step environment whose PATH has no Go toolchain, so a
// fall back to building from source shows as the "no Go toolchain" error
// instead of a build.
func noGoEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			t.Skipf("go is in %s, which the installer needs on PATH", d)
		}
	}
	env["PATH"] = "/usr/bin:/bin"
	return env
}

// TestSetupCommitRef: an action pinned by commit SHA installs the release
// whose tag points at that commit, verified against the committed checksum;
// a commit that is no release, or an API that does not answer, falls back to
// building from source.
func TestSetupCommitRef(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	bin, err := os.ReadFile(builtCLI(t))
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("a1", 20)
	gh := map[string]string{"action_ref": strings.ToUpper(sha), "action_repository": "acme/tf", "token": "ghs_fake"}

	var auth string
	dir, env := fakeRelease{listed: bin, served: bin, tags: tagsJSON(sha), tagsAuth: &auth}.serve(t)
	res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh})
	if res.ExitCode != 0 || res.Outputs["source"] != "release" || res.Outputs["version"] != "v1.2.3" {
		t.Fatalf("exit %d, outputs %v", res.ExitCode, res.Outputs)
	}
	if !strings.Contains(res.Stdout, "commit "+sha+" is release v1.2.3") {
		t.Errorf("no resolution message in\n%s", res.Stdout)
	}
	if auth != "Bearer ghs_fake" {
		t.Errorf("the tag listing was asked with Authorization %q, want the job's token", auth)
	}

	for name, tags := range map[string]string{"untagged commit": tagsJSON(strings.Repeat("b", 40)), "no tag listing": ""} {
		t.Run(name, func(t *testing.T) {
			dir, env := fakeRelease{listed: bin, served: bin, tags: tags}.serve(t)
			res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: noGoEnv(t, env), GitHub: gh})
			if res.ExitCode == 0 {
				t.Fatalf("installed %v", res.Outputs)
			}
			if a, ok := annotation(res, "error", "trustfabric setup"); !ok || !strings.Contains(a.Message, "no Go toolchain") {
				t.Errorf("annotations %+v, want the build-from-source path", res.Annotations)
			}
		})
	}
}

// receipted runs a Transparency Service (the CLI's serve), registers a
// statement about the given bytes and returns the transparent statement and
// the service's public key set file.
func receipted(t *testing.T, cli string, about []byte) (statement []byte, serviceKeys string) {
	t.Helper()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	tf := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
			t.Fatalf("trustfabric %v: %v\n%s", args, err, out)
		}
	}
	tf("key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(cli, "serve", "--addr", addr, "--data", p("data"), "--trust-key", p("issuer.pub.jwk"), "--log-level", "error")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	url := "http://" + addr
	for i := 0; ; i++ {
		if r, err := http.Get(url + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal("serve did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}
	sum := sha256.Sum256(about)
	if err := os.WriteFile(p("prov.json"), []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"trustfabric","digest":{"sha256":"`+
		hex.EncodeToString(sum[:])+`"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tf("statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://github.com/acme/tf/.github/workflows/release.yml",
		"--subject", "sha256:"+hex.EncodeToString(sum[:]), "--payload", p("prov.json"), "--out", p("s.cose"))
	tf("register", "--ts", url, p("s.cose"), "--out", p("t.cose"))
	r, err := http.Get(url + "/.well-known/scitt-keys")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	ks, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("ts-keys.cbor"), ks, 0o644); err != nil {
		t.Fatal(err)
	}
	stmt, err := os.ReadFile(p("t.cose"))
	if err != nil {
		t.Fatal(err)
	}
	return stmt, p("ts-keys.cbor")
}

// TestSetupReceipt: with cli-ts-key, the release binary must come with a
// receipt under that key about exactly its digest; a missing receipt, another
// service's key, a statement about other bytes, a source build and a key URL
// all fail the install.
func TestSetupReceipt(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	cli := builtCLI(t)
	bin, err := os.ReadFile(cli)
	if err != nil {
		t.Fatal(err)
	}
	good, keys := receipted(t, cli, bin)
	other, otherKeys := receipted(t, cli, []byte("other bytes"))
	gh := map[string]string{"action_ref": "v1.2.3", "action_repository": "acme/tf"}

	t.Run("verified", func(t *testing.T) {
		dir, env := fakeRelease{listed: bin, served: bin, statement: good}.serve(t)
		temp := t.TempDir()
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh, RunnerTemp: temp,
			Inputs: map[string]string{"cli-ts-key": keys}})
		if res.ExitCode != 0 || res.Outputs["source"] != "release" {
			t.Fatalf("exit %d, outputs %v", res.ExitCode, res.Outputs)
		}
		if !strings.Contains(res.Stdout, "receipt verifies under cli-ts-key") {
			t.Errorf("no receipt message in\n%s", res.Stdout)
		}
		// A second install reuses the binary and checks the kept statement again.
		res = run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh, RunnerTemp: temp,
			Inputs: map[string]string{"cli-ts-key": otherKeys}})
		if res.ExitCode == 0 {
			t.Error("the cached binary was accepted under another service's key")
		}
	})
	for _, tc := range []struct {
		name      string
		statement []byte
		key       string
		want      string
	}{
		{"missing receipt", nil, keys, "has no receipt"},
		{"another service's key", good, otherKeys, "does not verify"},
		{"statement about other bytes", other, otherKeys, "is about"},
		{"key URL", good, "https://ts.example.org/.well-known/scitt-keys", "not a URL"},
		{"no such key file", good, "/nonexistent/ts.jwk", "neither a key nor a readable file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, env := fakeRelease{listed: bin, served: bin, statement: tc.statement}.serve(t)
			temp := t.TempDir()
			res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh, RunnerTemp: temp,
				Inputs: map[string]string{"cli-ts-key": tc.key}})
			if res.ExitCode == 0 {
				t.Fatalf("installed %v", res.Outputs)
			}
			if a, ok := annotation(res, "error", "trustfabric setup"); !ok || !strings.Contains(a.Message, tc.want) {
				t.Errorf("annotations %+v, want an error with %q", res.Annotations, tc.want)
			}
			if left, _ := filepath.Glob(filepath.Join(temp, "trustfabric", "bin", "v1.2.3", "trustfabric")); len(left) > 0 {
				t.Errorf("installed %v anyway", left)
			}
		})
	}
	t.Run("inline key", func(t *testing.T) {
		// The key set is CBOR; an inline key is JWK or PEM text.
		jwk := filepath.Join(t.TempDir(), "ts.jwk")
		if out, err := exec.Command(cli, "key", "generate", "--out", jwk, "--public-out", jwk+".pub").CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		pub, err := os.ReadFile(jwk + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		dir, env := fakeRelease{listed: bin, served: bin, statement: good}.serve(t)
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env, GitHub: gh,
			Inputs: map[string]string{"cli-ts-key": string(pub)}})
		// Parsed and used (an unrelated key): the receipt does not verify under it.
		if a, ok := annotation(res, "error", "trustfabric setup"); res.ExitCode == 0 || !ok || !strings.Contains(a.Message, "does not verify") {
			t.Errorf("exit %d, annotations %+v", res.ExitCode, res.Annotations)
		}
	})
	t.Run("source build", func(t *testing.T) {
		dir, env := fakeRelease{listed: bin, served: bin, statement: good}.serve(t)
		res := run(t, filepath.Join(dir, "actions", "setup"), RunOptions{Env: env,
			GitHub: map[string]string{"action_ref": "main", "action_repository": "acme/tf"}, Inputs: map[string]string{"cli-ts-key": keys}})
		if a, ok := annotation(res, "error", "trustfabric setup"); res.ExitCode == 0 || !ok || !strings.Contains(a.Message, "no receipt to verify") {
			t.Errorf("exit %d, annotations %+v", res.ExitCode, res.Annotations)
		}
	})
}
