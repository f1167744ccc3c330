package admission

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/policy"
)

// TestKubeAPIServerPullSecrets runs the webhook with pull secrets read from
// a real kube-apiserver (KubePullSecrets): a Deployment of an image in a
// registry that requires basic auth is admitted with an imagePullSecret
// holding the credentials, and with a service account that lists it (when
// the pod lists none);
// without it, or with a wrong password, it is denied naming the
// registry's 401.
func TestKubeAPIServerPullSecrets(t *testing.T) {
	k := needKube(t)
	f := getFixture(t)
	p := newPrivateRegistry(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()

	api := KubeAPI{Server: os.Getenv("TF_KUBE_SERVER"), TokenFile: os.Getenv("TF_KUBE_TOKEN_FILE"), CAFile: os.Getenv("TF_KUBE_CA")}
	pull, err := KubePullSecrets(api)
	if err != nil {
		t.Fatalf("KubePullSecrets (TF_KUBE_SERVER, TF_KUBE_TOKEN_FILE, TF_KUBE_CA from .ci/kube.sh): %v", err)
	}
	// Decisions and pull secrets are cached; denials not at all, so that
	// each case below is decided on its own credentials.
	w := f.webhook(t, nil, WithPullSecrets(pull), WithPolicyOptions(policy.WithCacheTTL(time.Minute, 0)))
	certFile, keyFile, caPEM := testCA(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, w, ServeConfig{Listener: l, TLSCert: certFile, TLSKey: keyFile}, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	ns := nsGated
	if out, ok := k.run("", "create", "namespace", ns); !ok && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("create namespace %s: %s", ns, out)
	}
	suffix := time.Now().Format("150405.000000000")
	suffix = strings.ReplaceAll(suffix, ".", "")
	secret := func(name, pass string) string {
		return `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"` + name + `"},"type":"kubernetes.io/dockerconfigjson",` +
			`"data":{".dockerconfigjson":"` + base64.StdEncoding.EncodeToString([]byte(p.dockerConfigJSON(pass))) + `"}}`
	}
	regcred, wrong, sa := "regcred-"+suffix, "wrong-"+suffix, "builder-"+suffix
	k.must(secret(regcred, p.pass), "create", "-n", ns, "-f", "-")
	defer k.run("", "delete", "-n", ns, "secret", regcred)
	k.must(secret(wrong, "not-the-password"), "create", "-n", ns, "-f", "-")
	defer k.run("", "delete", "-n", ns, "secret", wrong)
	k.must(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"`+sa+`"},"imagePullSecrets":[{"name":"`+regcred+`"}]}`, "create", "-n", ns, "-f", "-")
	defer k.run("", "delete", "-n", ns, "serviceaccount", sa)

	k.must(webhookConfigs(l.Addr().String(), caPEM, "pull-"+suffix), "apply", "-f", "-")
	defer k.run("", "delete", "validatingwebhookconfiguration", "tf-test-validate-pull-"+suffix)
	defer k.run("", "delete", "mutatingwebhookconfiguration", "tf-test-mutate-pull-"+suffix)

	obj := func(serviceAccount string, secrets ...string) map[string]any {
		d := deployment("private", p.image)
		spec := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		if len(secrets) > 0 {
			var refs []any
			for _, s := range secrets {
				refs = append(refs, map[string]any{"name": s})
			}
			spec["imagePullSecrets"] = refs
		}
		if serviceAccount != "" {
			spec["serviceAccountName"] = serviceAccount
		}
		return d
	}
	apply := func(o map[string]any) (string, bool) {
		return k.run(string(mustJSON(t, o)), "create", "--dry-run=server", "-n", ns, "-f", "-")
	}
	// The API server picks the webhook configuration up within a second or so.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, ok := apply(obj(""))
		if !ok && strings.Contains(out, "trustfabric") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server did not call the webhook within 30s: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, c := range []struct {
		name  string
		obj   map[string]any
		allow bool
		words []string
	}{
		{"imagePullSecrets with the credentials", obj("", regcred), true, nil},
		{"the same without the secret", obj(""), false, []string{"cannot verify (denied, fail closed)", p.reg.Host, "registry answered 401"}},
		{"a secret with a wrong password", obj("", wrong), false, []string{"registry answered 401"}},
		{"a missing secret is skipped (as the kubelet does)", obj("", "no-such-secret"), false, []string{"registry answered 401"}},
		{"the service account's imagePullSecrets", obj(sa), true, nil},
		// As the ServiceAccount admission plugin: the account's secrets only
		// when the pod lists none.
		{"a pod secret replaces the account's", obj(sa, wrong), false, []string{"registry answered 401"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := apply(c.obj)
			if ok != c.allow {
				t.Fatalf("kubectl create --dry-run=server: admitted=%v, want %v:\n%s", ok, c.allow, out)
			}
			if !c.allow && !strings.Contains(out, `admission webhook "validate.trustfabric.dev" denied the request`) {
				t.Errorf("not denied by the webhook:\n%s", out)
			}
			for _, word := range c.words {
				if !strings.Contains(out, word) {
					t.Errorf("the denial does not say %q:\n%s", word, out)
				}
			}
			if strings.Contains(out, p.pass) {
				t.Errorf("the answer quotes the password:\n%s", out)
			}
			t.Logf("%s:\n%s", c.name, out)
		})
	}
}
