package gitlab

import (
	"context"
	"errors"
	"testing"
)

func TestToken(t *testing.T) {
	env := map[string]string{"GITLAB_CI": "true", "MY_TOKEN": " abc.def.ghi\n"}
	s := &Source{Getenv: func(k string) string { return env[k] }, Variable: "MY_TOKEN"}
	tok, err := s.Token(context.Background(), "aud")
	if err != nil || tok != "abc.def.ghi" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	if !Detect(func(k string) string { return env[k] }) {
		t.Error("Detect = false")
	}
	s.Variable = ""
	if _, err := s.Token(context.Background(), "aud"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("default variable unset: err = %v, want ErrNoToken", err)
	}
}
