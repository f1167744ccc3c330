package github

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
)

func TestTokenHonoursAudienceAndMasks(t *testing.T) {
	gh, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	env := gh.Env()
	var out bytes.Buffer
	s := New(func(k string) string { return env[k] }, nil, &out)
	tok, err := s.Token(context.Background(), "https://id.example.org")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	parsed.UnsafeClaimsWithoutVerification(&c)
	if len(c.Audience) != 1 || c.Audience[0] != "https://id.example.org" {
		t.Errorf("aud = %v", c.Audience)
	}
	if !strings.Contains(out.String(), "::add-mask::"+tok) {
		t.Errorf("token not masked; output %q", out.String())
	}
	if !Detect(func(k string) string { return env[k] }) {
		t.Error("Detect = false in a GitHub job")
	}
}

func TestTokenMissingPermission(t *testing.T) {
	s := New(func(string) string { return "" }, nil, &bytes.Buffer{})
	if _, err := s.Token(context.Background(), "x"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("err = %v, want ErrNoToken", err)
	}
}

func TestTokenBadRequestToken(t *testing.T) {
	gh, _ := oidctest.NewGitHub()
	defer gh.Close()
	env := gh.Env()
	env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
	s := New(func(k string) string { return env[k] }, nil, &bytes.Buffer{})
	if _, err := s.Token(context.Background(), "x"); !errors.Is(err, ErrRequest) {
		t.Fatalf("err = %v, want ErrRequest", err)
	}
}
