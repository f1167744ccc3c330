package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// The subset of the Kubernetes API the deploy manifests use, decoded with
// unknown fields refused: a misspelt or misplaced field fails here, offline
// (no API server needed). Field names and types follow core/v1 and apps/v1.
type (
	k8sObject struct {
		APIVersion                   string            `yaml:"apiVersion"`
		Kind                         string            `yaml:"kind"`
		Metadata                     k8sMeta           `yaml:"metadata"`
		AutomountServiceAccountToken *bool             `yaml:"automountServiceAccountToken"`
		Data                         map[string]string `yaml:"data"`
		Spec                         yaml.Node         `yaml:"spec"`
	}
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sServiceSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	k8sStatefulSetSpec struct {
		ServiceName string `yaml:"serviceName"`
		Replicas    int    `yaml:"replicas"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				AccessModes []string     `yaml:"accessModes"`
				Resources   k8sResources `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	}
	k8sPodSpec struct {
		ServiceAccountName            string `yaml:"serviceAccountName"`
		AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
		TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot   bool `yaml:"runAsNonRoot"`
			RunAsUser      int  `yaml:"runAsUser"`
			RunAsGroup     int  `yaml:"runAsGroup"`
			FSGroup        int  `yaml:"fsGroup"`
			SeccompProfile struct {
				Type string `yaml:"type"`
			} `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		Containers []k8sContainer `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			Secret *struct {
				SecretName  string `yaml:"secretName"`
				DefaultMode *int   `yaml:"defaultMode"`
			} `yaml:"secret"`
			EmptyDir *struct{} `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
	k8sContainer struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe  k8sProbe     `yaml:"readinessProbe"`
		LivenessProbe   k8sProbe     `yaml:"livenessProbe"`
		Resources       k8sResources `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	k8sProbe struct {
		HTTPGet struct {
			Path   string `yaml:"path"`
			Port   string `yaml:"port"`
			Scheme string `yaml:"scheme"`
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	k8sResources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
)

func strictDecode(t *testing.T, n *yaml.Node, v any, what string) {
	t.Helper()
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(n); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// TestDeployManifests validates deploy/kubernetes offline: each object has
// only fields of its kind; the container's args parse as `trustfabric serve`
// flags; the policies in the ConfigMap load with the service's own loaders;
// the probes hit /healthz and /readyz on the served port; every mount has a
// volume; the pod runs as non-root on a read-only root filesystem.
func TestDeployManifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "deploy", "kubernetes", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			want := map[string]string{"ServiceAccount": "v1", "ConfigMap": "v1", "Service": "v1", "StatefulSet": "apps/v1"}[o.Kind]
			if want == "" || o.APIVersion != want || o.Metadata.Name == "" {
				t.Errorf("%s: object %s %s %q", f, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			objs[o.Kind] = o
		}
	}

	var svc k8sServiceSpec
	svcSpec, stsSpec := objs["Service"].Spec, objs["StatefulSet"].Spec
	strictDecode(t, &svcSpec, &svc, "Service spec")
	var sts k8sStatefulSetSpec
	strictDecode(t, &stsSpec, &sts, "StatefulSet spec")
	pod := sts.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// The args are a valid `trustfabric serve` command line.
	cmd, rest, err := newRootCmd().Find(c.Args)
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("args %v: not trustfabric serve (%v)", c.Args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("args %v: %v", c.Args, err)
	}
	flag := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }

	// Files named by flags are mounted; ConfigMap policies load.
	cm := objs["ConfigMap"]
	mounts := map[string]string{} // mount path → volume name
	vols := map[string]bool{}
	for _, v := range pod.Volumes {
		vols[v.Name] = true
	}
	for _, v := range sts.VolumeClaimTemplates {
		vols[v.Metadata.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !vols[m.Name] {
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
		}
		mounts[m.MountPath] = m.Name
	}
	if mounts[flag("data")] == "" {
		t.Errorf("--data %s is not a mounted volume", flag("data"))
	}
	for _, f := range []string{"config", "identity-config"} {
		p := flag(f)
		if mounts[path.Dir(p)] != "config" {
			t.Errorf("--%s %s is not in the ConfigMap's mount", f, p)
			continue
		}
		data, ok := cm.Data[path.Base(p)]
		if !ok {
			t.Errorf("--%s: ConfigMap has no key %s", f, path.Base(p))
			continue
		}
		if f == "config" {
			_, err = transparency.ParseConfig([]byte(data))
		} else {
			_, err = identity.ParseConfig([]byte(data))
		}
		if err != nil {
			t.Errorf("ConfigMap %s: %v", path.Base(p), err)
		}
	}
	for _, f := range []string{"tls-cert", "tls-key"} {
		if mounts[path.Dir(flag(f))] != "tls" {
			t.Errorf("--%s %s is not in the TLS Secret's mount", f, flag(f))
		}
	}

	// Probes: the operations routes, over HTTPS, on the served port.
	_, port, _ := strings.Cut(flag("addr"), ":")
	if len(c.Ports) != 1 || c.Ports[0].Name != "https" || port != "8443" || c.Ports[0].ContainerPort != 8443 {
		t.Errorf("ports %+v, --addr %s", c.Ports, flag("addr"))
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != server.ReadyPath || p.Port != "https" || p.Scheme != "HTTPS" {
		t.Errorf("readiness probe %+v", p)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != "https" || p.Scheme != "HTTPS" {
		t.Errorf("liveness probe %+v", p)
	}
	if len(svc.Ports) != 1 || svc.Ports[0].TargetPort != "https" {
		t.Errorf("service ports %+v", svc.Ports)
	}
	for k, v := range sts.Selector.MatchLabels {
		if sts.Template.Metadata.Labels[k] != v || svc.Selector[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels or the Service's selector", k, v)
		}
	}
	if sts.Replicas != 1 {
		t.Errorf("replicas %d: the POSIX log has one writer", sts.Replicas)
	}
	// Hardening.
	sc := c.SecurityContext
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 || !sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("pod is not non-root, read-only, without privileges: %+v %+v", pod.SecurityContext, sc)
	}
}

// TestDeployManifestsAWS validates deploy/kubernetes/aws offline, as
// TestDeployManifests does the single-replica one, and what a scaled-out
// service needs: several replicas and a disruption budget below them; the
// aws backend chosen in the ConfigMap with the DSN from a Secret (never in
// the ConfigMap); the receipt key and the Identity Server's signing key from
// one Secret that every replica mounts.
func TestDeployManifestsAWS(t *testing.T) {
	f := filepath.Join("..", "..", "deploy", "kubernetes", "aws", "trustfabric.yaml")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want := map[string]string{"ServiceAccount": "v1", "ConfigMap": "v1", "Service": "v1", "Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1"}[o.Kind]
		if want == "" || o.APIVersion != want || o.Metadata.Name == "" {
			t.Errorf("%s: object %s %s %q", f, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		objs[o.Kind] = o
	}
	var dep struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	var pdb struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
	depSpec, pdbSpec := objs["Deployment"].Spec, objs["PodDisruptionBudget"].Spec
	strictDecode(t, &depSpec, &dep, "Deployment spec")
	strictDecode(t, &pdbSpec, &pdb, "PodDisruptionBudget spec")
	if dep.Replicas < 2 || pdb.MinAvailable < 1 || pdb.MinAvailable >= dep.Replicas {
		t.Errorf("replicas %d, PDB minAvailable %d: want several replicas and a budget below them", dep.Replicas, pdb.MinAvailable)
	}
	for k, v := range dep.Selector.MatchLabels {
		if dep.Template.Metadata.Labels[k] != v || pdb.Selector.MatchLabels[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels or the PDB's selector", k, v)
		}
	}
	pod := dep.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	cmd, rest, err := newRootCmd().Find(c.Args)
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("args %v: not trustfabric serve (%v)", c.Args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("args %v: %v", c.Args, err)
	}
	flag := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	if flag("db") != "" {
		t.Errorf("--db on the command line: the DSN (a password) belongs in the TF_DB_DSN Secret")
	}

	mounts := map[string]string{}
	vols := map[string]bool{}
	for _, v := range pod.Volumes {
		vols[v.Name] = true
		if v.Name == "keys" && (v.Secret == nil || v.Secret.SecretName == "") {
			t.Errorf("volume keys is not a Secret")
		}
	}
	for _, m := range c.VolumeMounts {
		if !vols[m.Name] {
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
		}
		mounts[m.MountPath] = m.Name
	}
	if mounts[path.Dir(flag("key"))] != "keys" {
		t.Errorf("--key %s is not in the keys Secret's mount", flag("key"))
	}
	cm := objs["ConfigMap"]
	reg, err := transparency.ParseConfig([]byte(cm.Data[path.Base(flag("config"))]))
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", path.Base(flag("config")), err)
	}
	if reg.Storage.Kind != server.StorageAWS || reg.Storage.S3Bucket == "" || reg.Storage.DB != "" {
		t.Errorf("ConfigMap storage %+v: want kind aws, a bucket and no DSN (it comes from a Secret)", reg.Storage)
	}
	id, err := identity.ParseConfig([]byte(cm.Data[path.Base(flag("identity-config"))]))
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", path.Base(flag("identity-config")), err)
	}
	if id.SigningKey == "" || mounts[path.Dir(id.SigningKey)] != "keys" {
		t.Errorf("identity signingKey %q: every replica must mount the same key from the keys Secret", id.SigningKey)
	}
	for _, m := range []string{path.Dir(flag("config")), path.Dir(flag("tls-cert")), flag("data")} {
		if mounts[m] == "" {
			t.Errorf("%s is not mounted", m)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name
		} else {
			env[e.Name] = e.Value
		}
	}
	for _, name := range []string{"TF_DB_DSN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if !strings.HasPrefix(env[name], "secret:") {
			t.Errorf("env %s = %q: want it from a Secret", name, env[name])
		}
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != server.ReadyPath || p.Port != "https" {
		t.Errorf("readiness probe %+v", p)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != "https" {
		t.Errorf("liveness probe %+v", p)
	}
	sc := c.SecurityContext
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 || !sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("pod is not non-root, read-only, without privileges: %+v %+v", pod.SecurityContext, sc)
	}
}

// TestServeDSNFromEnvWithConfigStorage: with the aws backend chosen in
// --config's storage section (as deploy/kubernetes/aws does), the DSN still
// comes from TF_DB_DSN, not only with --storage aws on the command line.
func TestServeDSNFromEnvWithConfigStorage(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("ts.jwk"), "--public-out", p("ts.pub.jwk"))
	if err := os.WriteFile(p("cfg.yaml"), []byte("storage:\n  kind: aws\n  s3_bucket: b\n  s3_endpoint: http://127.0.0.1:1\n  s3_path_style: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", p("data"), "--config", p("cfg.yaml"), "--key", p("ts.jwk")}
	t.Setenv("TF_DB_DSN", "")
	if code, _, errOut := tf(t, args...); code == 0 || !strings.Contains(errOut, "needs a database DSN") {
		t.Fatalf("no DSN anywhere: exit %d, %s; want the missing-DSN error", code, errOut)
	}
	// A database that is not there: the DSN was taken (the error is about
	// reaching it, not about a missing DSN), and the password is not shown.
	t.Setenv("TF_DB_DSN", "tf:s3cret@tcp(127.0.0.1:1)/tf")
	code, _, errOut := tf(t, args...)
	if code == 0 || strings.Contains(errOut, "needs a database DSN") || strings.Contains(errOut, "s3cret") {
		t.Fatalf("DSN from TF_DB_DSN: exit %d, %s; want a connection error without the password", code, errOut)
	}
}
