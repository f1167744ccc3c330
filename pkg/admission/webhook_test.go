package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

func post(t *testing.T, h http.Handler, path string, body []byte) *Review {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", path, rec.Code, rec.Body)
	}
	var rv Review
	if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil || rv.Response == nil {
		t.Fatalf("response %s: %v", rec.Body, err)
	}
	if rv.Response.UID != "uid-1" {
		t.Fatalf("response uid %q, want the request's", rv.Response.UID)
	}
	return &rv
}

// TestDecisions runs the validating endpoint in process on the cases the
// real API server test runs, plus the ones it cannot reach (unknown kinds,
// limits).
func TestDecisions(t *testing.T) {
	f := getFixture(t)
	w := f.webhook(t, map[string]map[string]string{nsLabelled: {gateLabel: "on"}})
	h := w.Handler()
	for _, c := range []struct {
		name, ns string
		kind     GroupVersionKind
		obj      any
		allow    bool
		code     int32
		words    []string // in the denial message
	}{
		{"attested by digest", nsGated, deploymentKind, deployment("a", f.attested), true, 0, nil},
		{"attested by tag", nsGated, deploymentKind, deployment("a", f.attestedTag), true, 0, nil},
		{"labelled namespace", nsLabelled, deploymentKind, deployment("a", f.attested), true, 0, nil},
		{"unattested", nsGated, deploymentKind, deployment("u", f.unattested), false, 403, []string{f.unattested, policy.ErrNoEvidence.Error()}},
		{"unattested in labelled namespace", nsLabelled, deploymentKind, deployment("u", f.unattested), false, 403, []string{"no SCITT statement"}},
		{"workload not allowed", nsGated, deploymentKind, deployment("i", f.denied[policy.CheckIdentity]), false, 403, []string{": identity: "}},
		{"untrusted service", nsGated, deploymentKind, deployment("s", f.denied[policy.CheckReceipts]), false, 403, []string{": receipts: ", policy.ErrNoTrustedReceipt.Error()}},
		{"tampered proof", nsGated, deploymentKind, deployment("p", f.denied["tampered"]), false, 403, []string{": receipts: "}},
		{"one bad image of two", nsGated, deploymentKind, deployment("m", f.attested, f.unattested), false, 403, []string{"container c1"}},
		{"exempt namespace", nsExempt, deploymentKind, deployment("e", f.unattested), true, 0, nil},
		{"namespace without policy", nsUngoverned, deploymentKind, deployment("n", f.attested), false, 403, []string{"matches no rule"}},
		{"unknown kind", nsGated, GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, deployment("k", f.attested), false, 400, []string{"example.com/v1/Widget"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rv := post(t, h, PathValidate, review(t, c.kind, c.ns, c.obj))
			r := rv.Response
			if r.Allowed != c.allow {
				t.Fatalf("allowed = %v, want %v; status %+v", r.Allowed, c.allow, r.Result)
			}
			if c.allow {
				return
			}
			if r.Result == nil || r.Result.Code != c.code {
				t.Fatalf("status %+v, want code %d", r.Result, c.code)
			}
			for _, word := range c.words {
				if !strings.Contains(r.Result.Message, word) {
					t.Errorf("message %q does not contain %q", r.Result.Message, word)
				}
			}
		})
	}
}

// TestKindsAndContainers: every gated kind, init and ephemeral containers.
func TestKindsAndContainers(t *testing.T) {
	f := getFixture(t)
	w := f.webhook(t, nil)
	spec := map[string]any{
		"containers":          []any{map[string]any{"name": "app", "image": f.attested}},
		"initContainers":      []any{map[string]any{"name": "init", "image": f.attested}},
		"ephemeralContainers": []any{map[string]any{"name": "debug", "image": f.unattested}},
	}
	tmpl := map[string]any{"spec": spec}
	objs := map[string]any{
		"Pod":         map[string]any{"spec": spec},
		"Deployment":  map[string]any{"spec": map[string]any{"template": tmpl}},
		"ReplicaSet":  map[string]any{"spec": map[string]any{"template": tmpl}},
		"StatefulSet": map[string]any{"spec": map[string]any{"template": tmpl}},
		"DaemonSet":   map[string]any{"spec": map[string]any{"template": tmpl}},
		"Job":         map[string]any{"spec": map[string]any{"template": tmpl}},
		"CronJob":     map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": tmpl}}}},
	}
	groups := map[string]string{"Pod": "", "Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "Job": "batch", "CronJob": "batch"}
	for kind, obj := range objs {
		t.Run(kind, func(t *testing.T) {
			rv := post(t, w.Handler(), PathValidate, review(t, GroupVersionKind{Group: groups[kind], Version: "v1", Kind: kind}, nsGated, obj))
			if rv.Response.Allowed {
				t.Fatal("allowed a pod spec whose ephemeral container image is unattested")
			}
			if m := rv.Response.Result.Message; !strings.Contains(m, "ephemeral container debug") || strings.Contains(m, "container app") {
				t.Errorf("message names the wrong containers: %s", m)
			}
		})
	}
}

func TestAnnotationsAndMutate(t *testing.T) {
	f := getFixture(t)
	w := f.webhook(t, nil)
	rv := post(t, w.Handler(), PathValidate, review(t, deploymentKind, nsGated, deployment("a", f.attestedTag)))
	if !rv.Response.Allowed {
		t.Fatalf("denied: %+v", rv.Response.Result)
	}
	imgs := rv.Response.AuditAnnotations["images"]
	if !strings.Contains(imgs, "entries="+f.entryID) {
		t.Errorf("audit annotation images = %q, want the entry id %s", imgs, f.entryID)
	}
	if !strings.HasPrefix(rv.Response.AuditAnnotations["policy"], "prod sha256:") {
		t.Errorf("audit annotation policy = %q", rv.Response.AuditAnnotations["policy"])
	}
	if len(rv.Response.Warnings) != 1 {
		t.Errorf("warnings %q: want one about the tag", rv.Response.Warnings)
	}

	rv = post(t, w.Handler(), PathMutate, review(t, deploymentKind, nsGated, deployment("a", f.attestedTag, f.attested)))
	if !rv.Response.Allowed || rv.Response.PatchType != "JSONPatch" {
		t.Fatalf("mutate: %+v", rv.Response)
	}
	var ops []struct{ Op, Path, Value string }
	if err := json.Unmarshal(rv.Response.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	digest := f.attested[strings.Index(f.attested, "@")+1:]
	want := f.attestedTag + "@" + digest
	if len(ops) != 1 || ops[0].Op != "replace" || ops[0].Path != "/spec/template/spec/containers/0/image" || ops[0].Value != want {
		t.Fatalf("patch %+v, want one replace of containers/0 with %s", ops, want)
	}
	// The pinned reference verifies without a registry round trip for the tag.
	rv = post(t, w.Handler(), PathValidate, review(t, deploymentKind, nsGated, deployment("a", want)))
	if !rv.Response.Allowed || len(rv.Response.Warnings) != 0 {
		t.Fatalf("pinned image: %+v", rv.Response)
	}
	// A denied request gets no patch.
	rv = post(t, w.Handler(), PathMutate, review(t, deploymentKind, nsGated, deployment("u", f.unattested+"x")))
	if rv.Response.Allowed || rv.Response.Patch != nil {
		t.Fatalf("mutate of a bad image: %+v", rv.Response)
	}
}

// TestFailClosed: registry unreachable, Transparency Service key URL
// unreachable, and a time-out each deny with the reason.
func TestFailClosed(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()

	t.Run("registry unreachable", func(t *testing.T) {
		w := f.webhook(t, nil, WithPolicyOptions(policy.WithCacheTTL(0, 0)))
		img := "127.0.0.1:1/acme/widgets:v1"
		rv := post(t, w.Handler(), PathValidate, review(t, deploymentKind, nsGated, deployment("r", img)))
		if rv.Response.Allowed || !strings.Contains(rv.Response.Result.Message, "cannot verify (denied, fail closed)") ||
			!strings.Contains(rv.Response.Result.Message, "127.0.0.1:1") {
			t.Fatalf("%+v", rv.Response.Result)
		}
	})

	t.Run("time-out", func(t *testing.T) {
		// A registry that answers the referrers listing only after 3 s.
		olareg, stop := ocitest.NewOlaregHandler(nil)
		gate := make(chan struct{})
		defer close(gate)
		h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/referrers/") {
				select {
				case <-gate:
				case <-r.Context().Done():
				case <-time.After(3 * time.Second):
				}
			}
			olareg.ServeHTTP(rw, r)
		})
		reg := ocitest.Serve(h, stop)
		defer reg.Close()
		img, err := servertest.PushRandomImage(ctx, reg.Host+"/acme/slow:v1")
		if err != nil {
			t.Fatal(err)
		}
		w := f.webhook(t, nil)
		start := time.Now()
		// The API server's ?timeout=1s leaves the webhook 800 ms.
		rec := httptest.NewRecorder()
		w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathValidate+"?timeout=1s",
			bytes.NewReader(review(t, deploymentKind, nsGated, deployment("t", img)))))
		var rv Review
		if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("answered after %s: the API server's 1s timeout was not honoured", el)
		}
		if rv.Response.Allowed || !strings.Contains(rv.Response.Result.Message, "timed out") {
			t.Fatalf("%+v", rv.Response.Result)
		}
	})

	t.Run("TS key URL unreachable", func(t *testing.T) {
		// The keys are fetched by URL when the webhook starts: it starts
		// anyway, denies naming the cause, and retries.
		w := f.webhookOn(t, keylessConfigYAML, nil)
		for _, path := range []string{PathValidate, PathMutate} {
			rv := post(t, w.Handler(), path, review(t, deploymentKind, nsKeyless, deployment("k", f.attested)))
			if rv.Response.Allowed || rv.Response.Result.Code != 403 {
				t.Fatalf("%s: %+v", path, rv.Response)
			}
			for _, word := range []string{"cannot verify (denied, fail closed)", "fetch keys from http://127.0.0.1:1", "policy keyless"} {
				if !strings.Contains(rv.Response.Result.Message, word) {
					t.Errorf("%s: message %q does not say %q", path, rv.Response.Result.Message, word)
				}
			}
		}
		o := w.Decide(ctx, &Request{UID: "u", Kind: deploymentKind, Namespace: nsKeyless, Operation: "CREATE",
			Object: mustJSON(t, deployment("k", f.attested))})
		if !errors.Is(o.Err, ErrPolicyNotReady) {
			t.Errorf("outcome error %v, want ErrPolicyNotReady", o.Err)
		}
		// The other policy's namespaces are not affected.
		if o := w.Decide(ctx, &Request{UID: "u", Kind: deploymentKind, Namespace: nsGated, Operation: "CREATE",
			Object: mustJSON(t, deployment("k", f.attested))}); !o.Allowed {
			t.Errorf("gated namespace: %s", o.Message(&Request{Kind: deploymentKind, Namespace: nsGated}))
		}
		pr := &ProviderRequest{APIVersion: ProviderAPIVersion, Kind: "ProviderRequest"}
		pr.Request.Keys = []string{f.attested}
		if resp := w.Provide(ctx, pr, "keyless"); !strings.Contains(resp.Response.SystemError, "127.0.0.1:1") || len(resp.Response.Items) != 0 {
			t.Errorf("gatekeeper: %+v", resp.Response)
		}
	})

	t.Run("policy without URLs that does not load", func(t *testing.T) {
		cfg, err := ParseConfig([]byte(configYAML), f.dir)
		if err != nil {
			t.Fatal(err)
		}
		// A policy whose key file vanished after parsing is a configuration
		// error: New refuses to start.
		bad := *cfg.policies["prod"]
		bad.TransparencyServices = append(slices.Clone(bad.TransparencyServices), policy.TransparencyService{Keys: []string{"/nonexistent/keys.cbor"}})
		cfg.policies["prod"] = &bad
		if _, err := New(ctx, cfg, WithNamespaceLabels(func(context.Context, string) (map[string]string, error) { return nil, nil })); err == nil {
			t.Fatal("New accepted a policy whose key file is missing")
		}
	})

	t.Run("namespace labels unreadable", func(t *testing.T) {
		cfg, err := LoadConfig(f.configFile)
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("api server down")
		w, err := New(ctx, cfg, WithNamespaceLabels(func(context.Context, string) (map[string]string, error) { return nil, boom }))
		if err != nil {
			t.Fatal(err)
		}
		o := w.Decide(ctx, &Request{UID: "u", Kind: deploymentKind, Namespace: nsLabelled, Operation: "CREATE",
			Object: mustJSON(t, deployment("l", f.attested))})
		if o.Allowed || !errors.Is(o.Err, boom) {
			t.Fatalf("outcome %+v", o)
		}
	})
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadInput(t *testing.T) {
	f := getFixture(t)
	w := f.webhook(t, nil)
	many := make([]string, MaxImages+1)
	for i := range many {
		many[i] = f.attested + "x" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	rv := post(t, w.Handler(), PathValidate, review(t, deploymentKind, nsGated, deployment("m", many...)))
	if rv.Response.Allowed || rv.Response.Result.Code != 400 || !strings.Contains(rv.Response.Result.Message, "limit is 32") {
		t.Fatalf("too many images: %+v", rv.Response.Result)
	}
	for name, body := range map[string]string{
		"not JSON":      `{"apiVersion":`,
		"wrong version": `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`,
		"no uid":        `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`,
		"duplicate key": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","Kind":"x","request":{"uid":"u"}}`,
		"trailing data": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}} {}`,
		"too deep":      `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`,
		"too large":     `{"apiVersion":"` + strings.Repeat("a", MaxReviewSize) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseReview([]byte(body)); !errors.Is(err, ErrBadReview) {
				t.Errorf("ParseReview: %v, want ErrBadReview", err)
			}
			rec := httptest.NewRecorder()
			w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathValidate, strings.NewReader(body)))
			if rec.Code != http.StatusBadRequest {
				t.Errorf("HTTP %d, want 400", rec.Code)
			}
		})
	}
	req := &Request{Kind: GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: mustJSON(t, map[string]any{"spec": map[string]any{
		"containers": make([]any, MaxContainers+1)}})}
	if _, err := req.Containers(); !errors.Is(err, ErrTooMany) {
		t.Errorf("too many containers: %v", err)
	}
	// The same through the endpoint: a denial with code 400 and the limit.
	cs := make([]any, MaxContainers+1)
	for i := range cs {
		cs[i] = map[string]any{"name": "c", "image": f.attested}
	}
	rv = post(t, w.Handler(), PathValidate, review(t, GroupVersionKind{Version: "v1", Kind: "Pod"}, nsGated, map[string]any{"spec": map[string]any{"containers": cs}}))
	if rv.Response.Allowed || rv.Response.Result.Code != 400 || !strings.Contains(rv.Response.Result.Message, "limit is 128") {
		t.Errorf("too many containers: %+v", rv.Response.Result)
	}
	// Gatekeeper: more keys than MaxProviderKeys is a systemError naming the limit.
	keys := make([]string, MaxProviderKeys+1)
	for i := range keys {
		keys[i] = f.attested
	}
	body, _ := json.Marshal(map[string]any{"apiVersion": ProviderAPIVersion, "kind": "ProviderRequest", "request": map[string]any{"keys": keys}})
	if _, err := ParseProviderRequest(body); !errors.Is(err, ErrTooMany) {
		t.Errorf("too many keys: %v", err)
	}
	rec := httptest.NewRecorder()
	w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathGatekeeper, bytes.NewReader(body)))
	var pr ProviderResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil || !strings.Contains(pr.Response.SystemError, "limit is 256") || len(pr.Response.Items) != 0 {
		t.Errorf("too many keys through the endpoint: %s", rec.Body)
	}
}

func TestGatekeeper(t *testing.T) {
	f := getFixture(t)
	w := f.webhook(t, nil)
	cfg, _ := LoadConfig(f.configFile)
	cfg.Default = "prod"
	w.cfg = cfg
	body, _ := json.Marshal(map[string]any{"apiVersion": ProviderAPIVersion, "kind": "ProviderRequest",
		"request": map[string]any{"keys": []string{f.attestedTag, f.unattested}}})
	for _, path := range []string{PathGatekeeper, PathGatekeeper + "/prod"} {
		rec := httptest.NewRecorder()
		w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		var resp ProviderResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Response.SystemError != "" || len(resp.Response.Items) != 2 {
			t.Fatalf("%s: %s", path, rec.Body)
		}
		ok, bad := resp.Response.Items[0], resp.Response.Items[1]
		if ok.Key != f.attestedTag || ok.Error != "" || ok.Value != f.attested {
			t.Errorf("attested item %+v, want value %s", ok, f.attested)
		}
		if bad.Key != f.unattested || !strings.Contains(bad.Error, policy.ErrNoEvidence.Error()) {
			t.Errorf("unattested item %+v", bad)
		}
	}
	rec := httptest.NewRecorder()
	w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathGatekeeper+"/nope", bytes.NewReader(body)))
	if !strings.Contains(rec.Body.String(), "systemError") {
		t.Errorf("unknown policy: %s", rec.Body)
	}
	if _, err := ParseProviderRequest([]byte(`{"apiVersion":"x","kind":"ProviderRequest"}`)); !errors.Is(err, ErrBadReview) {
		t.Errorf("bad provider request: %v", err)
	}
}

// TestMultiArch: an index is allowed when it is attested or every platform
// manifest is; a platform digest through its index only with the switch on
// and the tag written next to the digest.
func TestMultiArch(t *testing.T) {
	f := getFixture(t)
	platformTagged := f.indexTag + "@" + strings.SplitN(f.platformOfAttested, "@", 2)[1]
	for _, c := range []struct {
		name     string
		config   string
		image    string
		allow    bool
		words    []string // in the reasons when denied
		mentions string   // a rule the result must name
	}{
		{"attested index", configYAML, f.attestedIndex, true, nil, ""},
		{"attested index by tag", configYAML, f.indexTag, true, nil, ""},
		{"every platform attested", configYAML, f.platformsIndex, true, nil, RulePlatforms},
		{"one platform of two attested", configYAML, f.partialIndex, false, []string{"multi-arch (" + RulePlatforms + "): platform linux/arm64", "no SCITT statement"}, RulePlatforms},
		{"platform digest, switch off", configYAML, platformTagged, false, []string{"no SCITT statement"}, ""},
		{"platform digest with tag, switch on", platformViaIndexYAML, platformTagged, true, nil, RuleIndex},
		{"platform digest without tag, switch on", platformViaIndexYAML, f.platformOfAttested, false, []string{"no SCITT statement"}, ""},
		{"platform digest with another index's tag, switch on", platformViaIndexYAML,
			f.otherIndexTag + "@" + strings.SplitN(f.platformOfAttested, "@", 2)[1], false, []string{"does not list"}, RuleIndex},
		{"image pinned as tag@digest, tag names no index, switch on", platformViaIndexYAML, strings.Replace(f.unattested, "@", ":v1@", 1), false, []string{"no SCITT statement"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := f.webhookOn(t, c.config, nil)
			req := &Request{UID: "u", Kind: deploymentKind, Namespace: nsGated, Operation: "CREATE", Object: mustJSON(t, deployment("m", c.image))}
			o := w.Decide(context.Background(), req)
			if o.Allowed != c.allow {
				t.Fatalf("allowed = %v, want %v: %s", o.Allowed, c.allow, o.Message(req))
			}
			r := o.Images[0]
			if c.mentions != "" && (r.MultiArch == nil || r.MultiArch.Rule != c.mentions) {
				t.Errorf("multi-arch rule %+v, want %q", r.MultiArch, c.mentions)
			}
			if c.mentions == "" && r.MultiArch != nil && r.MultiArch.Rule == RuleIndex {
				t.Errorf("the index rule applied: %+v", r.MultiArch)
			}
			if c.allow {
				if len(r.Entries()) == 0 {
					t.Error("allowed without an entry id")
				}
				return
			}
			msg := o.Message(req)
			for _, word := range c.words {
				if !strings.Contains(msg, word) {
					t.Errorf("message %q does not contain %q", msg, word)
				}
			}
		})
	}
}
