package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/quickstart"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// fixture is one servertest environment with an attested image, an
// unattested one and the quickstart's deny cases, and an admission config
// trusting the environment.
type fixture struct {
	env        *servertest.Env
	dir        string
	policyFile string
	configFile string
	// attested by digest and by tag; unattested by digest.
	attested, attestedTag, unattested string
	entryID                           string
	// denied maps a check name to an image denied at it.
	denied map[string]string
	// Multi-arch images (two platforms each), by digest; indexTag is
	// attestedIndex's tag.
	attestedIndex, indexTag string // the index is attested, its platforms are not
	platformsIndex          string // every platform is attested, the index is not
	partialIndex            string // one platform of two is attested, the index is not
	// platformOfAttested is a platform digest of attestedIndex
	// (repository@digest).
	platformOfAttested string
	// otherIndexTag names another index in attestedIndex's repository.
	otherIndexTag string
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

// Namespaces of the admission config the tests use.
const (
	nsGated      = "gated"
	nsLabelled   = "labelled"
	nsExempt     = "exempt-ns"
	nsUngoverned = "ungoverned"
	nsKeyless    = "keyless"
	gateLabel    = "trustfabric.dev/gate"
)

const configYAML = `apiVersion: trustfabric.dev/v1alpha1
kind: AdmissionConfig
policies:
  prod: policy.yaml
namespaces:
  - names: [gated, default]
    policy: prod
  - selector:
      matchLabels: {trustfabric.dev/gate: "on"}
    policy: prod
exempt:
  names: [exempt-ns]
timeout: 8s
`

// keylessConfigYAML adds the policy "keyless" (the fixture's, fetching its
// TS keys from a URL nothing answers) for namespace keyless.
const keylessConfigYAML = `apiVersion: trustfabric.dev/v1alpha1
kind: AdmissionConfig
policies:
  prod: policy.yaml
  keyless: keyless-policy.yaml
namespaces:
  - names: [gated, default]
    policy: prod
  - names: [keyless]
    policy: keyless
  - selector:
      matchLabels: {trustfabric.dev/gate: "on"}
    policy: prod
exempt:
  names: [exempt-ns]
timeout: 8s
multiArch:
  platformViaIndex: true
`

// getFixture starts the environment once per test binary (it is shared by
// the tests and benchmarks; TestMain closes it).
func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixOnce.Do(func() { fix, fixErr = newFixture(context.Background()) })
	if fixErr != nil {
		tb.Fatalf("fixture: %v", fixErr)
	}
	return fix
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		_ = fix.env.Close()
		_ = os.RemoveAll(fix.dir)
	}
	os.Exit(code)
}

func newFixture(ctx context.Context) (*fixture, error) {
	dir, err := os.MkdirTemp("", "tf-admission-")
	if err != nil {
		return nil, err
	}
	env, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "env")})
	if err != nil {
		return nil, err
	}
	f := &fixture{env: env, dir: dir, attestedTag: env.ImageTag, attested: env.Image, denied: map[string]string{}}
	res, err := attest.Run(ctx, attest.Options{Image: env.ImageTag, TS: env.TSURL, IdentityServer: env.IdentityURL,
		Getenv: env.Getenv, Out: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	f.entryID = res.EntryID
	if f.policyFile, err = quickstart.WritePolicy(dir, env); err != nil {
		return nil, err
	}
	pol, err := os.ReadFile(f.policyFile)
	if err != nil {
		return nil, err
	}
	keyless := strings.Replace(string(pol), "    keys: [ts-keys.cbor]\n", "    url: http://127.0.0.1:1\n    kids: [\"00\"]\n", 1)
	if keyless == string(pol) {
		return nil, fmt.Errorf("the quickstart policy no longer pins ts-keys.cbor:\n%s", pol)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.policyFile), "keyless-policy.yaml"), []byte(keyless), 0o644); err != nil {
		return nil, err
	}
	f.configFile = filepath.Join(dir, "admission.yaml")
	if err := os.WriteFile(f.configFile, []byte(configYAML), 0o644); err != nil {
		return nil, err
	}
	if f.unattested, err = servertest.PushRandomImage(ctx, env.RegistryHost+"/acme/unattested:v1"); err != nil {
		return nil, err
	}
	if err := f.multiArch(ctx); err != nil {
		return nil, err
	}
	reg, err := oci.New()
	if err != nil {
		return nil, err
	}
	for i, c := range quickstart.DenyCases {
		if c.Check == policy.CheckPreimage {
			continue
		}
		img, err := c.Prepare(ctx, env, reg, filepath.Join(dir, fmt.Sprintf("case%d", i)))
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", c.Name, err)
		}
		key := c.Check
		if strings.Contains(c.Name, "tampered") {
			key = "tampered"
		}
		f.denied[key] = img
	}
	return f, nil
}

// multiArch pushes three two-platform indexes and attests them as the
// fields of fixture say.
func (f *fixture) multiArch(ctx context.Context) error {
	attestRef := func(ref string) error {
		_, err := attest.Run(ctx, attest.Options{Image: ref, TS: f.env.TSURL, IdentityServer: f.env.IdentityURL,
			Getenv: f.env.Getenv, Out: io.Discard})
		if err != nil {
			return fmt.Errorf("attest %s: %w", ref, err)
		}
		return nil
	}
	var platforms [3][]string
	var err error
	f.indexTag = f.env.RegistryHost + "/acme/multi:v1"
	if f.attestedIndex, platforms[0], err = pushIndex(ctx, f.indexTag); err != nil {
		return err
	}
	if f.platformsIndex, platforms[1], err = pushIndex(ctx, f.env.RegistryHost+"/acme/multi-platforms:v1"); err != nil {
		return err
	}
	if f.partialIndex, platforms[2], err = pushIndex(ctx, f.env.RegistryHost+"/acme/multi-partial:v1"); err != nil {
		return err
	}
	f.platformOfAttested = platforms[0][0]
	// Another index in the same repository, listing other platforms.
	f.otherIndexTag = f.env.RegistryHost + "/acme/multi:v2"
	if _, _, err := pushIndex(ctx, f.otherIndexTag); err != nil {
		return err
	}
	for _, ref := range []string{f.attestedIndex, platforms[1][0], platforms[1][1], platforms[2][0]} {
		if err := attestRef(ref); err != nil {
			return err
		}
	}
	return nil
}

// pushIndex pushes a random index of two linux images (amd64, arm64) under
// ref (a tag) and returns it and its platforms as repository@digest.
func pushIndex(ctx context.Context, ref string) (string, []string, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", nil, err
	}
	var adds []mutate.IndexAddendum
	var out []string
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 1)
		if err != nil {
			return "", nil, err
		}
		if err := remote.Write(tag.Context().Digest(mustDigest(img)), img, remote.WithContext(ctx)); err != nil {
			return "", nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		out = append(out, tag.Context().Name()+"@"+mustDigest(img))
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err != nil {
		return "", nil, fmt.Errorf("push index %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", nil, err
	}
	return tag.Context().Name() + "@" + d.String(), out, nil
}

func mustDigest(img v1.Image) string {
	d, err := img.Digest()
	if err != nil {
		panic(err)
	}
	return d.String()
}

// webhook builds a Webhook on the fixture's config with namespace labels
// from a map.
func (f *fixture) webhook(tb testing.TB, labels map[string]map[string]string, opts ...Option) *Webhook {
	tb.Helper()
	return f.webhookOn(tb, configYAML, labels, opts...)
}

// platformViaIndexYAML is configYAML with the multi-arch switch on.
const platformViaIndexYAML = configYAML + `multiArch:
  platformViaIndex: true
`

// webhookOn builds a Webhook on an admission config (YAML) whose policy is
// the fixture's.
func (f *fixture) webhookOn(tb testing.TB, config string, labels map[string]map[string]string, opts ...Option) *Webhook {
	tb.Helper()
	cfg, err := ParseConfig([]byte(config), f.dir)
	if err != nil {
		tb.Fatal(err)
	}
	lookup := func(_ context.Context, ns string) (map[string]string, error) { return labels[ns], nil }
	w, err := New(context.Background(), cfg, append([]Option{WithNamespaceLabels(lookup)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// deployment returns a Deployment object with the given container images.
func deployment(name string, images ...string) map[string]any {
	var cs []any
	for i, img := range images {
		cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": img})
	}
	return map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": 1,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": cs},
			},
		},
	}
}

// review wraps an object in an AdmissionReview.
func review(tb testing.TB, gvk GroupVersionKind, ns string, obj any) []byte {
	tb.Helper()
	o, err := json.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": ReviewAPIVersion, "kind": ReviewKind,
		"request": map[string]any{"uid": "uid-1", "kind": gvk, "namespace": ns, "name": "x", "operation": "CREATE",
			"object": json.RawMessage(o), "userInfo": map[string]any{"username": "admin"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var deploymentKind = GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
