// Package spiffe obtains workload credentials from a SPIFFE Workload API
// (a SPIRE agent) at SPIFFE_ENDPOINT_SOCKET: a WIT-SVID with its private key
// directly (SPIFFE WIT-SVID profile, go-spiffe exp/svid/witsvid), or a
// JWT-SVID to exchange at the identity server (subject_token_type jwt).
package spiffe

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// EnvSocket is the Workload API address variable.
const EnvSocket = "SPIFFE_ENDPOINT_SOCKET"

// TokenType is the RFC 8693 subject_token_type of JWT-SVIDs.
const TokenType = "urn:ietf:params:oauth:token-type:jwt"

// ErrUnavailable: no Workload API address, or it answered with an error.
var ErrUnavailable = errors.New("SPIFFE Workload API unavailable")

// Source talks to the Workload API.
type Source struct {
	// Addr is the Workload API address ("unix:///run/spire/agent.sock");
	// $SPIFFE_ENDPOINT_SOCKET when empty.
	Addr string
}

// Detect reports whether a Workload API address is configured.
func Detect(getenv func(string) string) bool { return getenv(EnvSocket) != "" }

func (s *Source) addr() (string, error) {
	a := s.Addr
	if a == "" {
		a = os.Getenv(EnvSocket)
	}
	if a == "" {
		return "", fmt.Errorf("%w: %s is not set", ErrUnavailable, EnvSocket)
	}
	return a, nil
}

// Token fetches a JWT-SVID for audience.
func (s *Source) Token(ctx context.Context, audience string) (string, error) {
	a, err := s.addr()
	if err != nil {
		return "", err
	}
	svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience}, workloadapi.WithAddr(a))
	if err != nil {
		return "", fmt.Errorf("%w: fetch JWT-SVID: %w", ErrUnavailable, err)
	}
	return svid.Marshal(), nil
}

// WIT fetches the default WIT-SVID and its private key.
func (s *Source) WIT(ctx context.Context) (string, crypto.Signer, error) {
	a, err := s.addr()
	if err != nil {
		return "", nil, err
	}
	svid, err := workloadapi.FetchWITSVID(ctx, "", workloadapi.WithAddr(a))
	if err != nil {
		return "", nil, fmt.Errorf("%w: fetch WIT-SVID: %w", ErrUnavailable, err)
	}
	signer, ok := svid.PrivateKey.(crypto.Signer)
	if !ok {
		return "", nil, fmt.Errorf("%w: the WIT-SVID came without a usable private key", ErrUnavailable)
	}
	return svid.Marshal(), signer, nil
}
