package admission

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseDockerConfig(t *testing.T) {
	cfgJSON := `{"auths":{
		"registry.example:5000":{"username":"u1","password":"p1"},
		"https://index.docker.io/v1/":{"auth":"` + b64("hub:hubpass") + `"},
		"*.corp.example/team":{"auth":"` + b64("team:tp:with:colons") + `"},
		"ghcr.io":{"identitytoken":"idtok"}}}`
	auths, err := ParseDockerConfig(SecretTypeDockerConfigJSON, []byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(auths) != 4 {
		t.Fatalf("%d entries, want 4", len(auths))
	}
	// Most specific first: the one with a path prefix.
	if auths[0].Host != "*.corp.example" || auths[0].Path != "team" || auths[0].Auth.Password != "tp:with:colons" {
		t.Errorf("first entry %+v", auths[0])
	}
	kc := PullKeychain(auths)
	for _, c := range []struct {
		repo, user, pass, idtok string
	}{
		{"registry.example:5000/acme/app", "u1", "p1", ""},
		{"docker.io/library/nginx", "hub", "hubpass", ""},
		{"nginx", "hub", "hubpass", ""},
		{"git.corp.example/team/app", "team", "tp:with:colons", ""},
		{"ghcr.io/acme/app", "", "", "idtok"},
		// No match: anonymous (the next keychain is asked).
		{"registry.example/acme/app", "", "", ""},      // other port
		{"git.corp.example/other/app", "", "", ""},     // path prefix
		{"a.git.corp.example/team/app", "", "", ""},    // a glob is one label
		{"git.corp.example/teammate/app", "", "", ""},  // prefix by segment
		{"registry.example:5001/acme/app", "", "", ""}, // other port
		{"quay.io/acme/app", "", "", ""},               // other host
	} {
		ref, err := name.ParseReference(c.repo)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(ref.Context())
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != c.user || got.Password != c.pass || got.IdentityToken != c.idtok {
			t.Errorf("%s: got user %q idtoken %q, want %q %q", c.repo, got.Username, got.IdentityToken, c.user, c.idtok)
		}
		if c.user == "" && c.idtok == "" && a != authn.Anonymous {
			t.Errorf("%s: not anonymous", c.repo)
		}
	}

	// The legacy .dockercfg format: the same entries without "auths".
	legacy, err := ParseDockerConfig(SecretTypeDockercfg, []byte(`{"registry.example:5000":{"auth":"`+b64("u2:p2")+`","email":"x@example.com"}}`))
	if err != nil || len(legacy) != 1 || legacy[0].Auth.Username != "u2" || legacy[0].Auth.Password != "p2" {
		t.Fatalf("dockercfg: %+v %v", legacy, err)
	}
}

func TestParseDockerConfigRefusals(t *testing.T) {
	many := `{"auths":{`
	for i := range MaxDockerConfigEntries + 1 {
		if i > 0 {
			many += ","
		}
		many += `"r` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `.example:` + strconv.Itoa(i+1) + `":{"username":"u","password":"p"}`
	}
	many += "}}"
	for _, c := range []struct {
		name, typ, data, want string
	}{
		{"not JSON", SecretTypeDockerConfigJSON, `{"auths":`, "JSON"},
		{"wrong type of field", SecretTypeDockerConfigJSON, `{"auths":{"r.example":{"password":7}}}`, "wrong type"},
		{"auth not base64", SecretTypeDockerConfigJSON, `{"auths":{"r.example":{"auth":"s3cr3t!!"}}}`, "auth is not base64"},
		{"auth without colon", SecretTypeDockerConfigJSON, `{"auths":{"r.example":{"auth":"` + b64("s3cr3t") + `"}}}`, "user:password"},
		{"no credentials", SecretTypeDockerConfigJSON, `{"auths":{"r.example":{}}}`, "no credentials"},
		{"duplicate key", SecretTypeDockerConfigJSON, `{"auths":{"r.example":{"username":"a","password":"b"},"R.example":{"username":"c","password":"s3cr3t"}}}`, "duplicate key"},
		{"bad host", SecretTypeDockerConfigJSON, `{"auths":{"user:s3cr3t@r.example":{"username":"a","password":"b"}}}`, "not a host"},
		{"bad glob", SecretTypeDockerConfigJSON, `{"auths":{"[.example":{"username":"a","password":"b"}}}`, "registry"},
		{"too deep", SecretTypeDockerConfigJSON, strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20), "ErrBadDockerConfig"},
		{"too many registries", SecretTypeDockerConfigJSON, many, "registries; the limit"},
		{"too large", SecretTypeDockerConfigJSON, `{"auths":{"r.example":{"username":"` + strings.Repeat("a", MaxDockerConfigSize) + `"}}}`, "bytes; the limit"},
		{"other secret type", "Opaque", `{}`, "secret type"},
		{"not an object", SecretTypeDockercfg, `[]`, "not a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDockerConfig(c.typ, []byte(c.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrBadDockerConfig) {
				t.Errorf("%v does not wrap ErrBadDockerConfig", err)
			}
			if c.want != "ErrBadDockerConfig" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes a credential: %v", err)
			}
		})
	}
}

func TestSecretAuths(t *testing.T) {
	auths, err := secretAuths(SecretTypeDockerConfigJSON, map[string]string{".dockerconfigjson": b64(`{"auths":{"r.example":{"username":"u","password":"p"}}}`)})
	if err != nil || len(auths) != 1 || auths[0].Auth.Username != "u" {
		t.Fatalf("%+v %v", auths, err)
	}
	if auths, err := secretAuths("Opaque", map[string]string{"x": "eA=="}); err != nil || auths != nil {
		t.Errorf("an Opaque secret: %+v %v, want nothing", auths, err)
	}
	if _, err := secretAuths(SecretTypeDockercfg, map[string]string{".dockerconfigjson": "e30="}); !errors.Is(err, ErrBadDockerConfig) {
		t.Errorf("a dockercfg secret without .dockercfg: %v", err)
	}
	if _, err := secretAuths(SecretTypeDockerConfigJSON, map[string]string{".dockerconfigjson": "!!"}); !errors.Is(err, ErrBadDockerConfig) {
		t.Errorf("not base64: %v", err)
	}
}

// FuzzParseDockerConfig: any bytes yield entries within the limits, each
// with credentials and a host, or an ErrBadDockerConfig; never a panic.
func FuzzParseDockerConfig(f *testing.F) {
	f.Add(SecretTypeDockerConfigJSON, []byte(`{"auths":{"registry.example:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{"auth":"`+b64("a:b")+`"}}}`))
	f.Add(SecretTypeDockercfg, []byte(`{"*.example.com/team":{"auth":"`+b64("a:b")+`","email":"e"}}`))
	f.Add(SecretTypeDockerConfigJSON, []byte(`{"auths":{"ghcr.io":{"identitytoken":"t"}}}`))
	f.Add(SecretTypeDockerConfigJSON, []byte(`{"auths":{"r":{"auth":"!!"}}}`))
	f.Fuzz(func(t *testing.T, typ string, b []byte) {
		auths, err := ParseDockerConfig(typ, b)
		if err != nil {
			if !errors.Is(err, ErrBadDockerConfig) {
				t.Fatalf("error %v does not wrap ErrBadDockerConfig", err)
			}
			return
		}
		if len(auths) > MaxDockerConfigEntries {
			t.Fatalf("%d entries accepted", len(auths))
		}
		for _, a := range auths {
			if a.Host == "" || a.Auth == (authn.AuthConfig{}) {
				t.Fatalf("entry without host or credentials: %q", a.Key)
			}
			// Matching never panics either.
			_ = a.matches("registry.example:5000", "acme/app")
		}
	})
}
