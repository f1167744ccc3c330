// Package gitlab obtains the GitLab CI OIDC token of the running job from an
// id_tokens variable (GitLab docs "OpenID Connect (OIDC) authentication using
// ID tokens"; specs/identity.md §2.2). GitLab fixes the audience in the
// pipeline YAML:
//
//	id_tokens:
//	  TRUSTFABRIC_ID_TOKEN:
//	    aud: https://id.example.org
//
// GitLab has no log masking command; the token is never printed.
//
// The CI context for provenance lives in package ci, not here.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// DefaultVariable is the id_tokens variable read by default.
const DefaultVariable = "TRUSTFABRIC_ID_TOKEN"

// TokenType is the RFC 8693 subject_token_type of these tokens.
const TokenType = "urn:ietf:params:oauth:token-type:id_token"

// ErrNoToken: the id_tokens variable is not set.
var ErrNoToken = errors.New("no GitLab CI id_token available")

// Source reads the token from an environment variable.
type Source struct {
	Getenv   func(string) string // os.Getenv when nil
	Variable string              // DefaultVariable when empty
}

// Detect reports whether the process runs in a GitLab CI job.
func Detect(getenv func(string) string) bool { return getenv("GITLAB_CI") == "true" }

// Token returns the id_token. The audience was fixed in the pipeline YAML, so
// audience is only used in the error hint; the identity server checks aud.
func (s *Source) Token(_ context.Context, audience string) (string, error) {
	getenv, name := s.Getenv, s.Variable
	if getenv == nil {
		getenv = os.Getenv
	}
	if name == "" {
		name = DefaultVariable
	}
	tok := strings.TrimSpace(getenv(name))
	if tok == "" {
		return "", fmt.Errorf("%w: $%s is empty: declare 'id_tokens: {%s: {aud: %s}}' in the job", ErrNoToken, name, name, audience)
	}
	return tok, nil
}
