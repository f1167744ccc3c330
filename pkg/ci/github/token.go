// Package github obtains the GitHub Actions OIDC token of the running job
// (GitHub docs "OpenID Connect in GitHub Actions"; specs/identity.md §2.1)
// through go-githubactions: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD
// with the request bearer. The token is masked in the job log
// (::add-mask::) as soon as it is received. Library code never calls Fatal.
//
// The CI context for provenance lives in package ci, not here.
package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/sethvargo/go-githubactions"
)

// ErrNoToken: the job cannot mint an OIDC token: the request variables are
// missing (no "permissions: id-token: write", or a pull_request run from a
// fork, which GitHub never gives a token).
var ErrNoToken = errors.New("no GitHub Actions OIDC token available")

// ErrRequest: the runner's token service refused the request.
var ErrRequest = errors.New("GitHub OIDC token request failed")

// Source fetches OIDC tokens from the runner.
type Source struct {
	action *githubactions.Action
}

// New returns a Source reading the environment through getenv (os.Getenv
// when nil), requesting with client (http.DefaultClient when nil) and writing
// workflow commands (the mask) to out (os.Stdout when nil).
func New(getenv func(string) string, client *http.Client, out io.Writer) *Source {
	if getenv == nil {
		getenv = os.Getenv
	}
	if out == nil {
		out = os.Stdout
	}
	opts := []githubactions.Option{githubactions.WithGetenv(getenv), githubactions.WithWriter(out)}
	if client != nil {
		opts = append(opts, githubactions.WithHTTPClient(client))
	}
	return &Source{action: githubactions.New(opts...)}
}

// Detect reports whether the process runs in a GitHub Actions job.
func Detect(getenv func(string) string) bool { return getenv("GITHUB_ACTIONS") == "true" }

// TokenType is the RFC 8693 subject_token_type of these tokens.
const TokenType = "urn:ietf:params:oauth:token-type:id_token"

// Token requests a token for audience and masks it in the job log.
func (s *Source) Token(ctx context.Context, audience string) (string, error) {
	tok, err := s.action.GetIDToken(ctx, audience)
	if err != nil {
		var missing *githubactions.EnvMissingError
		if errors.As(err, &missing) {
			return "", fmt.Errorf("%w: %w (add 'permissions: id-token: write'; pull_request runs from forks never get one)", ErrNoToken, err)
		}
		var failed *githubactions.RequestFailedError
		if errors.As(err, &failed) {
			return "", fmt.Errorf("%w: status %d", ErrRequest, failed.StatusCode)
		}
		return "", fmt.Errorf("%w: %w", ErrRequest, err)
	}
	s.action.AddMask(tok)
	return tok, nil
}
