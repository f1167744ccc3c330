package admission

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

// privateRegistry is an olareg registry behind HTTP basic auth with one
// image attested by the fixture's workload.
type privateRegistry struct {
	reg        *ocitest.Registry
	user, pass string
	// image is attested, by digest.
	image string
}

// newPrivateRegistry starts the registry, pushes a random image and attests
// it with the credentials.
func newPrivateRegistry(t *testing.T, f *fixture) *privateRegistry {
	t.Helper()
	p := &privateRegistry{user: "puller", pass: fmt.Sprintf("pw-%d", time.Now().UnixNano())}
	h, stop := ocitest.NewOlaregHandler(nil)
	p.reg = ocitest.Serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u+":"+pw), []byte(p.user+":"+p.pass)) != 1 {
			rw.Header().Set("WWW-Authenticate", `Basic realm="private"`)
			http.Error(rw, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(rw, r)
	}), stop)
	t.Cleanup(p.reg.Close)
	basic := &authn.Basic{Username: p.user, Password: p.pass}
	tag, err := name.NewTag(p.reg.Host+"/acme/private:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuth(basic)); err != nil {
		t.Fatalf("push to the private registry: %v", err)
	}
	p.image = tag.Context().Name() + "@" + mustDigest(img)
	client, err := oci.New(oci.WithKeychain(p.keychain()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.Run(ctx, attest.Options{Image: p.image, TS: f.env.TSURL, IdentityServer: f.env.IdentityURL,
		Getenv: f.env.Getenv, Out: io.Discard, Registry: client}); err != nil {
		t.Fatalf("attest on the private registry: %v", err)
	}
	return p
}

// keychain is the registry's credentials as a pull secret would give them.
func (p *privateRegistry) keychain() PullKeychain {
	return PullKeychain{{Key: p.reg.Host, Host: p.reg.Host, Auth: authn.AuthConfig{Username: p.user, Password: p.pass}}}
}

// dockerConfigJSON is the .dockerconfigjson of a pull secret for it.
func (p *privateRegistry) dockerConfigJSON(pass string) string {
	auth := base64.StdEncoding.EncodeToString([]byte(p.user + ":" + pass))
	return fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, p.reg.Host, auth)
}

// TestPullSecrets: in process, the webhook reads a private registry with
// the request's pull secrets; without them (or with a wrong password) the
// image is denied naming the registry's 401, also right after an allow
// (decisions are cached per credentials), and the pull secret lookup's
// error denies.
func TestPullSecrets(t *testing.T) {
	f := getFixture(t)
	p := newPrivateRegistry(t, f)
	var gotRefs PullRefs
	pull := func(_ context.Context, ns string, refs PullRefs) (PullKeychain, error) {
		gotRefs = refs
		switch {
		case ns == "exempt-ns":
			t.Error("pull secrets looked up for an exempt namespace")
		case len(refs.Secrets) == 1 && refs.Secrets[0] == "regcred":
			return p.keychain(), nil
		case len(refs.Secrets) == 1 && refs.Secrets[0] == "wrong":
			kc := p.keychain()
			kc[0].Auth.Password = "wrong"
			return kc, nil
		case len(refs.Secrets) == 1 && refs.Secrets[0] == "unreadable":
			return nil, fmt.Errorf("GET secret %s/unreadable: HTTP 403 (the webhook's service account needs get on secrets)", ns)
		}
		return nil, nil
	}
	w := f.webhook(t, nil, WithPullSecrets(pull), WithPolicyOptions(policy.WithCacheTTL(time.Minute, time.Minute)))
	withSecrets := func(secrets ...string) map[string]any {
		d := deployment("web", p.image)
		spec := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		var refs []any
		for _, s := range secrets {
			refs = append(refs, map[string]any{"name": s})
		}
		spec["imagePullSecrets"] = refs
		spec["serviceAccountName"] = "builder"
		return d
	}
	decide := func(obj map[string]any) *Outcome {
		rv, err := ParseReview(review(t, deploymentKind, nsGated, obj))
		if err != nil {
			t.Fatal(err)
		}
		return w.Decide(context.Background(), rv.Request)
	}
	for _, c := range []struct {
		name    string
		secrets []string
		allow   bool
		words   []string
	}{
		{"with the pull secret", []string{"regcred"}, true, nil},
		{"without it, after the allow", nil, false, []string{"401", p.reg.Host}},
		{"with a wrong password", []string{"wrong"}, false, []string{"401"}},
		{"with the pull secret again (cached)", []string{"regcred"}, true, nil},
		{"pull secret unreadable", []string{"unreadable"}, false, []string{"registry credentials", "needs get on secrets"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := decide(withSecrets(c.secrets...))
			if o.Allowed != c.allow {
				t.Fatalf("allowed=%v, want %v: %s", o.Allowed, c.allow, o.Message(&Request{Kind: deploymentKind, Namespace: nsGated}))
			}
			if gotRefs.ServiceAccount != "builder" || strings.Join(gotRefs.Secrets, ",") != strings.Join(c.secrets, ",") {
				t.Errorf("pull refs %+v", gotRefs)
			}
			msg := o.Message(&Request{Kind: deploymentKind, Namespace: nsGated})
			t.Logf("%s", msg)
			for _, word := range c.words {
				if !strings.Contains(msg, word) {
					t.Errorf("the denial does not say %q: %s", word, msg)
				}
			}
			if strings.Contains(msg, p.pass) {
				t.Errorf("the message quotes the password: %s", msg)
			}
		})
	}
	// The service account defaults to "default"; exempt namespaces cost no lookup.
	rv, err := ParseReview(review(t, deploymentKind, nsGated, deployment("web", p.image)))
	if err != nil {
		t.Fatal(err)
	}
	if refs, err := rv.Request.PullRefs(); err != nil || refs.ServiceAccount != "default" || len(refs.Secrets) != 0 {
		t.Errorf("PullRefs of a spec without them: %+v %v", refs, err)
	}
	rv, err = ParseReview(review(t, deploymentKind, nsExempt, withSecrets("regcred")))
	if err != nil {
		t.Fatal(err)
	}
	if o := w.Decide(context.Background(), rv.Request); !o.Allowed || !o.Exempt {
		t.Errorf("exempt namespace: %+v", o)
	}
	many := withSecrets(strings.Split(strings.Repeat("s,", MaxPullSecrets+1), ",")[:MaxPullSecrets+1]...)
	if o := decide(many); o.Allowed || o.Code != 400 || !strings.Contains(o.Err.Error(), "imagePullSecrets; the limit") {
		t.Errorf("too many pull secrets: %+v", o)
	}
}
