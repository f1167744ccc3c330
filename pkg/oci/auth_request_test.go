package oci

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

type staticKeychain authn.AuthConfig

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	if authn.AuthConfig(k) == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig(k)), nil
}

// TestCredentialID: no request keychain, no id; equal credentials, equal
// ids; other credentials, another id; none, "anonymous"; the id does not
// contain the password.
func TestCredentialID(t *testing.T) {
	c, err := New(WithKeychain(staticKeychain{}))
	if err != nil {
		t.Fatal(err)
	}
	ref := "registry.example/acme/app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ctx := context.Background()
	id := func(ctx context.Context) string {
		t.Helper()
		s, err := c.CredentialID(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := id(ctx); got != "" {
		t.Errorf("without a request keychain: %q, want empty", got)
	}
	a1 := id(WithRequestKeychain(ctx, staticKeychain{Username: "u", Password: "secret-a"}))
	a2 := id(WithRequestKeychain(ctx, staticKeychain{Username: "u", Password: "secret-a"}))
	b := id(WithRequestKeychain(ctx, staticKeychain{Username: "u", Password: "secret-b"}))
	anon := id(WithRequestKeychain(ctx, staticKeychain{}))
	if a1 != a2 || a1 == b || a1 == "" || b == "" {
		t.Errorf("ids: a %q %q, b %q", a1, a2, b)
	}
	if anon != "anonymous" {
		t.Errorf("no credentials: %q, want anonymous", anon)
	}
	for _, s := range []string{a1, b} {
		if len(s) != 32 {
			t.Errorf("id %q is not 16 bytes in hex", s)
		}
	}
	if _, err := c.CredentialID(WithRequestKeychain(ctx, staticKeychain{}), "::bad"); err == nil {
		t.Error("a bad reference was given an id")
	}
}
