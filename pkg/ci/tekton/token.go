// Package tekton obtains a Kubernetes projected service-account token, the
// identity of a Tekton TaskRun's pod (specs/identity.md §2.3). The Task mounts
//
//	volumes:
//	  - name: trustfabric-token
//	    projected:
//	      sources:
//	        - serviceAccountToken: {audience: https://id.example.org, expirationSeconds: 600, path: token}
//
// at /var/run/secrets/trustfabric (or sets TRUSTFABRIC_TOKEN_FILE).
//
// The CI context for provenance lives in package ci, not here.
package tekton

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// DefaultPath is where the projected token is read by default.
const DefaultPath = "/var/run/secrets/trustfabric/token"

// EnvTokenFile overrides the path.
const EnvTokenFile = "TRUSTFABRIC_TOKEN_FILE"

// TokenType is the RFC 8693 subject_token_type of service-account tokens.
const TokenType = "urn:ietf:params:oauth:token-type:jwt"

// MaxTokenSize bounds the token file.
const MaxTokenSize = 16 << 10

// ErrNoToken: the token file is missing or empty.
var ErrNoToken = errors.New("no projected service-account token available")

// Source reads the projected token file.
type Source struct {
	Getenv func(string) string // os.Getenv when nil
	Path   string              // $TRUSTFABRIC_TOKEN_FILE, else DefaultPath, when empty
}

// Detect reports whether a projected token is configured or present.
func Detect(getenv func(string) string) bool {
	if getenv(EnvTokenFile) != "" {
		return true
	}
	_, err := os.Stat(DefaultPath)
	return err == nil
}

func (s *Source) path() string {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	switch {
	case s.Path != "":
		return s.Path
	case getenv(EnvTokenFile) != "":
		return getenv(EnvTokenFile)
	}
	return DefaultPath
}

// Token reads the token; kubelet refreshes the file, so it is read anew each
// time. The audience was fixed by the projected volume.
func (s *Source) Token(_ context.Context, audience string) (string, error) {
	p := s.path()
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w (project a serviceAccountToken with audience %s there, or set %s)", ErrNoToken, err, audience, EnvTokenFile)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTokenSize+1))
	if err != nil {
		return "", fmt.Errorf("%w: read %s: %w", ErrNoToken, p, err)
	}
	if len(b) > MaxTokenSize {
		return "", fmt.Errorf("%w: %s is over %d bytes", ErrNoToken, p, MaxTokenSize)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrNoToken, p)
	}
	return tok, nil
}
