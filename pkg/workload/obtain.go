package workload

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/ci/github"
	"github.com/trustfabric/trustfabric/pkg/ci/gitlab"
	"github.com/trustfabric/trustfabric/pkg/ci/spiffe"
	"github.com/trustfabric/trustfabric/pkg/ci/tekton"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/witstatement"
)

// Provider names accepted by Obtain.
const (
	ProviderAuto       = "auto"
	ProviderGitHub     = "github"
	ProviderGitLab     = "gitlab"
	ProviderKubernetes = "kubernetes"
	ProviderSPIFFE     = "spiffe"
)

// ObtainOptions configure Obtain.
type ObtainOptions struct {
	// Server is the identity server URL (required unless Provider is spiffe
	// and the agent serves WIT-SVIDs).
	Server string
	// Audience is the audience requested for the CI token; Server when empty.
	Audience string
	// Provider is auto (default), github, gitlab, kubernetes or spiffe.
	Provider string
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
	// HTTPClient is used for the runner token request and the exchange.
	HTTPClient *http.Client
	// Out receives CI workflow commands (GitHub's ::add-mask::); os.Stdout
	// when nil.
	Out io.Writer
	// GitLabVariable names the id_tokens variable; TRUSTFABRIC_ID_TOKEN when
	// empty.
	GitLabVariable string
	// TokenFile is the Kubernetes projected token path (tekton default when
	// empty).
	TokenFile string
}

// Credentials are a workload identity: a WIT and its private key.
type Credentials struct {
	WIT      string
	Key      *keys.PrivateKey
	ID       wimse.Identifier
	Provider string
}

// DetectProvider names the platform the process runs on: github, gitlab,
// kubernetes (a projected token) or spiffe (a Workload API socket).
func DetectProvider(getenv func(string) string) (string, error) {
	switch {
	case github.Detect(getenv):
		return ProviderGitHub, nil
	case gitlab.Detect(getenv):
		return ProviderGitLab, nil
	case tekton.Detect(getenv):
		return ProviderKubernetes, nil
	case spiffe.Detect(getenv):
		return ProviderSPIFFE, nil
	}
	return "", fmt.Errorf("%w: not in GitHub Actions, GitLab CI, a pod with a projected token or next to a SPIRE agent; pass --provider", ErrNoProvider)
}

// Obtain gets the platform's token, generates an ephemeral ES256 key and
// exchanges the token for a WIT bound to it. With the spiffe provider it first
// asks the agent for a WIT-SVID, and exchanges a JWT-SVID when the agent has
// none.
func Obtain(ctx context.Context, o ObtainOptions) (*Credentials, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	prov := o.Provider
	if prov == "" || prov == ProviderAuto {
		var err error
		if prov, err = DetectProvider(getenv); err != nil {
			return nil, err
		}
	}
	aud := o.Audience
	if aud == "" {
		aud = o.Server
	}
	var (
		tok, tokType string
		err          error
	)
	switch prov {
	case ProviderGitHub:
		tokType = github.TokenType
		tok, err = github.New(getenv, o.HTTPClient, o.Out).Token(ctx, aud)
	case ProviderGitLab:
		tokType = gitlab.TokenType
		tok, err = (&gitlab.Source{Getenv: getenv, Variable: o.GitLabVariable}).Token(ctx, aud)
	case ProviderKubernetes:
		tokType = tekton.TokenType
		tok, err = (&tekton.Source{Getenv: getenv, Path: o.TokenFile}).Token(ctx, aud)
	case ProviderSPIFFE:
		src := &spiffe.Source{Addr: getenv(spiffe.EnvSocket)}
		if wit, signer, werr := src.WIT(ctx); werr == nil {
			return credentialsFrom(wit, signer, prov)
		}
		tokType = spiffe.TokenType
		tok, err = src.Token(ctx, aud)
	default:
		return nil, fmt.Errorf("%w: %q (want auto, github, gitlab, kubernetes or spiffe)", ErrNoProvider, prov)
	}
	if err != nil {
		return nil, err
	}
	if o.Server == "" {
		return nil, fmt.Errorf("%w: the identity server URL is required", ErrConfig)
	}
	key, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		return nil, err
	}
	opts := []ExchangeOption{WithSubjectTokenType(tokType)}
	if o.HTTPClient != nil {
		opts = append(opts, WithClient(o.HTTPClient))
	}
	wit, err := Exchange(ctx, o.Server, tok, key, opts...)
	if err != nil {
		return nil, err
	}
	id, err := witstatement.Issuer(wit, key.Signer.Public())
	if err != nil {
		return nil, err
	}
	return &Credentials{WIT: wit, Key: key, ID: id, Provider: prov}, nil
}

// credentialsFrom wraps a WIT-SVID and key from a SPIFFE agent.
func credentialsFrom(wit string, signer crypto.Signer, prov string) (*Credentials, error) {
	key, err := keys.NewPrivateKey(signer)
	if err != nil {
		return nil, err
	}
	id, err := witstatement.Issuer(wit, signer.Public())
	if err != nil {
		return nil, err
	}
	return &Credentials{WIT: wit, Key: key, ID: id, Provider: prov}, nil
}

// WriteFiles writes the WIT to witPath and the private key, as a JWK, to
// keyPath with mode 0600 (each through a temporary file and a rename).
func (c *Credentials) WriteFiles(witPath, keyPath string) error {
	jwk, err := c.Key.MarshalJWK()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(keyPath, jwk, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := atomicfile.WriteFile(witPath, []byte(c.WIT+"\n"), 0o644); err != nil {
		return fmt.Errorf("write WIT: %w", err)
	}
	return nil
}

// ReadWIT reads a WIT file written by WriteFiles.
func ReadWIT(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(b) > wimse.MaxTokenSize+2 {
		return "", fmt.Errorf("%w: %s is not a WIT", wimse.ErrMalformed, path)
	}
	return strings.TrimSpace(string(b)), nil
}

// HTTPClient returns a client that sends the WIT and a fresh Workload Proof
// Token (audience: the request's target URI) with every request (design §2.4).
// base may be nil (http.DefaultTransport, no overall timeout).
func (c *Credentials) HTTPClient(base *http.Client) *http.Client {
	out := &http.Client{}
	if base != nil {
		*out = *base
	}
	out.Transport = &wimse.Transport{Base: out.Transport, Credentials: wimse.Credentials{WIT: c.WIT, Key: c.Key}}
	return out
}
