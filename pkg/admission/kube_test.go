package admission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// kube is a real kube-apiserver + etcd started by .ci/kube.sh.
type kube struct {
	t          *testing.T
	kubectl    string
	kubeconfig string
}

// needKube skips unless .ci/kube.sh's environment is present.
func needKube(t *testing.T) *kube {
	t.Helper()
	kc, kctl := os.Getenv("TF_KUBECONFIG"), os.Getenv("TF_KUBECTL")
	if kc == "" || kctl == "" {
		t.Skip("no Kubernetes API server: run `.ci/kube.sh start DIR && . DIR/env.sh` (sets TF_KUBECONFIG, TF_KUBECTL; .ci/run does it)")
	}
	return &kube{t: t, kubectl: kctl, kubeconfig: kc}
}

// run runs kubectl with stdin; it returns combined output and whether it
// succeeded.
func (k *kube) run(stdin string, args ...string) (string, bool) {
	k.t.Helper()
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func (k *kube) must(stdin string, args ...string) string {
	k.t.Helper()
	out, ok := k.run(stdin, args...)
	if !ok {
		k.t.Fatalf("kubectl %s: %s", strings.Join(args, " "), out)
	}
	return out
}

// testCA writes a CA and a serving certificate for 127.0.0.1 into dir and
// returns the paths and the CA in PEM.
func testCA(t *testing.T, dir string) (certFile, keyFile string, caPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tf-admission-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "trustfabric-admission"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// webhookConfigs registers /validate for every gated kind in every
// namespace but kube-system, and /mutate in namespaces labelled
// trustfabric.dev/mutate=on.
func webhookConfigs(addr string, caPEM []byte, suffix string) string {
	ca := base64.StdEncoding.EncodeToString(caPEM)
	rules := `
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]`
	return fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: tf-test-validate-%[3]s
webhooks:
- name: validate.trustfabric.dev
  clientConfig:
    url: https://%[1]s/validate
    caBundle: %[2]s
  rules:%[4]s
  namespaceSelector:
    matchExpressions:
    - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: 5
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: tf-test-mutate-%[3]s
webhooks:
- name: mutate.trustfabric.dev
  clientConfig:
    url: https://%[1]s/mutate
    caBundle: %[2]s
  rules:%[4]s
  namespaceSelector:
    matchLabels: {trustfabric.dev/mutate: "on"}
  failurePolicy: Fail
  sideEffects: None
  reinvocationPolicy: Never
  admissionReviewVersions: ["v1"]
  timeoutSeconds: 5
`, addr, ca, suffix, rules)
}

// TestKubeAPIServer runs the admission webhook behind a real kube-apiserver
// and applies Deployments with kubectl.
func TestKubeAPIServer(t *testing.T) {
	k := needKube(t)
	f := getFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()

	// A registry whose referrers listing hangs, for the time-out case.
	olareg, stopOlareg := ocitest.NewOlaregHandler(nil)
	release := make(chan struct{})
	slow := ocitest.Serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		olareg.ServeHTTP(rw, r)
	}), stopOlareg)
	defer slow.Close()
	defer close(release)
	slowImage, err := servertest.PushRandomImage(ctx, slow.Host+"/acme/slow:v1")
	if err != nil {
		t.Fatal(err)
	}

	// The webhook, over TLS, reading namespace labels from the API server.
	certFile, keyFile, caPEM := testCA(t, dir)
	labels, err := KubeNamespaces(KubeAPI{Server: os.Getenv("TF_KUBE_SERVER"), TokenFile: os.Getenv("TF_KUBE_TOKEN_FILE"), CAFile: os.Getenv("TF_KUBE_CA")})
	if err != nil {
		t.Fatalf("KubeNamespaces (TF_KUBE_SERVER, TF_KUBE_TOKEN_FILE, TF_KUBE_CA from .ci/kube.sh): %v", err)
	}
	// The config with the keyless policy (its TS key URL does not answer)
	// and the multi-arch switch on.
	w := f.webhookOn(t, keylessConfigYAML, nil, WithNamespaceLabels(labels), WithPolicyOptions(policy.WithCacheTTL(time.Minute, 0)))
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

	platformTagged := f.indexTag + "@" + strings.SplitN(f.platformOfAttested, "@", 2)[1]
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	for _, ns := range []string{nsGated, nsLabelled, nsExempt, nsKeyless, "mutated"} {
		if out, ok := k.run("", "create", "namespace", ns); !ok && !strings.Contains(out, "AlreadyExists") {
			t.Fatalf("create namespace %s: %s", ns, out)
		}
	}
	k.must("", "label", "--overwrite", "namespace", nsLabelled, gateLabel+"=on")
	k.must("", "label", "--overwrite", "namespace", "mutated", gateLabel+"=on", "trustfabric.dev/mutate=on")
	k.must(webhookConfigs(l.Addr().String(), caPEM, suffix), "apply", "-f", "-")
	defer k.run("", "delete", "validatingwebhookconfiguration", "tf-test-validate-"+suffix)
	defer k.run("", "delete", "mutatingwebhookconfiguration", "tf-test-mutate-"+suffix)

	apply := func(ns string, obj map[string]any, extra ...string) (string, bool) {
		t.Helper()
		b := mustJSON(t, obj)
		return k.run(string(b), append([]string{"create", "--dry-run=server", "-n", ns, "-f", "-"}, extra...)...)
	}
	// The API server picks the webhook configuration up within a second or so.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, ok := apply(nsGated, deployment("probe", f.unattested))
		if !ok && strings.Contains(out, "trustfabric") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server did not call the webhook within 30s: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	for _, c := range []struct {
		name, ns, image string
		allow           bool
		words           []string
	}{
		{"attested image", nsGated, f.attested, true, nil},
		{"attested image by tag, namespace selected by label", nsLabelled, f.attestedTag, true, nil},
		{"unattested image", nsGated, f.unattested, false, []string{"no SCITT statement is attached"}},
		{"statement by a workload the policy does not allow", nsGated, f.denied[policy.CheckIdentity], false, []string{": identity: "}},
		{"receipt from an untrusted service", nsGated, f.denied[policy.CheckReceipts], false, []string{": receipts: "}},
		{"tampered inclusion proof", nsGated, f.denied["tampered"], false, []string{": receipts: "}},
		{"exempt namespace", nsExempt, f.unattested, true, nil},
		{"registry unreachable", nsGated, "127.0.0.1:1/acme/widgets:v1", false, []string{"cannot verify (denied, fail closed)", "127.0.0.1:1"}},
		{"time-out", nsGated, slowImage, false, []string{"cannot verify (denied, fail closed)", "timed out"}},
		{"TS key URL unreachable", nsKeyless, f.attested, false, []string{"cannot verify (denied, fail closed)", "fetch keys from http://127.0.0.1:1"}},
		{"multi-arch: attested index", nsGated, f.attestedIndex, true, nil},
		{"multi-arch: every platform attested", nsGated, f.platformsIndex, true, nil},
		{"multi-arch: one platform of two attested", nsGated, f.partialIndex, false, []string{"multi-arch (" + RulePlatforms + "): platform linux/arm64"}},
		{"multi-arch: platform digest of an attested index, by tag (platformViaIndex on)", nsGated, platformTagged, true, nil},
		{"multi-arch: platform digest without its tag", nsGated, f.platformOfAttested, false, []string{"no SCITT statement"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			out, ok := apply(c.ns, deployment("web", c.image))
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
			t.Logf("%s in %s:\n%s", c.name, time.Since(start).Round(time.Millisecond), out)
		})
	}

	t.Run("Pod and CronJob", func(t *testing.T) {
		pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": f.attested}},
				"initContainers": []any{map[string]any{"name": "init", "image": f.unattested}}}}
		out, ok := apply(nsGated, pod)
		if ok || !strings.Contains(out, "init container init") {
			t.Fatalf("pod with an unattested init container: %s", out)
		}
		cron := map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "c"},
			"spec": map[string]any{"schedule": "0 0 * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{
				"spec": map[string]any{"restartPolicy": "Never", "containers": []any{map[string]any{"name": "job", "image": f.attested}}}}}}}}
		if out, ok := apply(nsGated, cron); !ok {
			t.Fatalf("cronjob with an attested image: %s", out)
		}
	})

	t.Run("mutate pins the tag to the verified digest", func(t *testing.T) {
		out, ok := apply("mutated", deployment("web", f.attestedTag), "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		if !ok {
			t.Fatalf("create: %s", out)
		}
		digest := f.attested[strings.Index(f.attested, "@"):]
		if out != f.attestedTag+digest {
			t.Fatalf("stored image %q, want %s", out, f.attestedTag+digest)
		}
	})

	t.Run("real create", func(t *testing.T) {
		b := mustJSON(t, deployment("stored", f.attested))
		k.must(string(b), "create", "-n", nsGated, "-f", "-")
		defer k.run("", "delete", "-n", nsGated, "deployment", "stored")
		out := k.must("", "get", "-n", nsGated, "deployment", "stored", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		if out != f.attested {
			t.Fatalf("stored image %q", out)
		}
	})
}

// TestDeployManifests validates deploy/admission/ against the real API
// server (server-side dry run: schema, defaulting and admission, nothing
// stored but the namespace).
func TestDeployManifests(t *testing.T) {
	k := needKube(t)
	dir := filepath.Join("..", "..", "deploy", "admission")
	k.must("", "apply", "-f", filepath.Join(dir, "00-namespace.yaml"))
	out := k.must("", "apply", "--dry-run=server", "-f", dir)
	for _, want := range []string{
		"deployment.apps/trustfabric-admission", "poddisruptionbudget.policy/trustfabric-admission",
		"service/trustfabric-admission", "validatingwebhookconfiguration.admissionregistration.k8s.io/trustfabric-admission",
		"mutatingwebhookconfiguration.admissionregistration.k8s.io/trustfabric-admission",
		"clusterrole.rbac.authorization.k8s.io/trustfabric-admission",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply --dry-run=server did not create %s:\n%s", want, out)
		}
	}
	// What the Deployment promises: 2 replicas, non-root, read-only root.
	got := k.must("", "apply", "--dry-run=server", "-f", filepath.Join(dir, "deployment.yaml"), "-o",
		`jsonpath={.items[0].spec.replicas} {.items[0].spec.template.spec.securityContext.runAsNonRoot} {.items[0].spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}`)
	if got != "2 true true" {
		t.Errorf("deployment: replicas, runAsNonRoot, readOnlyRootFilesystem = %q, want 2 true true", got)
	}
	// The admission config shipped in the ConfigMap parses (its policy is a template to fill in).
	// (Parsed next to the fixture's policy.yaml: the shipped policy is a template with placeholders.)
	cm := k.must("", "apply", "--dry-run=server", "-f", filepath.Join(dir, "example-config", "config.yaml"), "-o", `jsonpath={.data.admission\.yaml}`)
	if _, err := ParseConfig([]byte(cm), filepath.Dir(getFixture(t).policyFile)); err != nil {
		t.Errorf("the shipped admission.yaml: %v", err)
	}
}
