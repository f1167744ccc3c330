package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// ExchangeError is the identity server's RFC 6749 error response; it wraps
// ErrExchange.
type ExchangeError struct {
	Status      int
	Code        string // e.g. invalid_request, invalid_dpop_proof
	Description string
}

func (e *ExchangeError) Error() string {
	return fmt.Sprintf("token exchange refused (%d %s): %s", e.Status, e.Code, e.Description)
}

// Unwrap makes errors.Is(err, ErrExchange) true.
func (e *ExchangeError) Unwrap() error { return ErrExchange }

// ExchangeOption configures Exchange.
type ExchangeOption func(*exchangeOptions) error

type exchangeOptions struct {
	client    *http.Client
	tokenType string
}

// WithClient sets the HTTP client. Default: a client with a 30 s timeout.
func WithClient(c *http.Client) ExchangeOption {
	return func(o *exchangeOptions) error { o.client = c; return nil }
}

// WithSubjectTokenType sets subject_token_type. Default: wimse.TokenTypeIDToken
// (use wimse.TokenTypeJWT for Kubernetes service-account tokens and JWT-SVIDs).
func WithSubjectTokenType(t string) ExchangeOption {
	return func(o *exchangeOptions) error { o.tokenType = t; return nil }
}

// Exchange trades ciToken for a WIT bound to key at the identity server at
// serverURL (RFC 8693 + DPoP). It returns the WIT's compact serialization.
// Server refusals are *ExchangeError.
func Exchange(ctx context.Context, serverURL, ciToken string, key *keys.PrivateKey, opts ...ExchangeOption) (string, error) {
	o := exchangeOptions{client: &http.Client{Timeout: 30 * time.Second}, tokenType: wimse.TokenTypeIDToken}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return "", err
		}
	}
	tokenURL := strings.TrimSuffix(serverURL, "/") + wimse.TokenPath
	proof, err := NewDPoPProof(key, tokenURL)
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type":           {wimse.GrantTypeTokenExchange},
		"subject_token":        {ciToken},
		"subject_token_type":   {o.tokenType},
		"requested_token_type": {wimse.TokenTypeJWT},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	resp, err := o.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token exchange: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("token exchange: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return "", &ExchangeError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	var tr wimse.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token exchange: %w: response has no access_token", wimse.ErrMalformed)
	}
	if tr.IssuedTokenType != wimse.TokenTypeJWT {
		return "", fmt.Errorf("token exchange: %w: issued_token_type %q", wimse.ErrMalformed, tr.IssuedTokenType)
	}
	return tr.AccessToken, nil
}

// FetchBundle fetches the identity server's WIT bundle for trustDomain.
func FetchBundle(ctx context.Context, serverURL, trustDomain string, client *http.Client) (*wimse.Bundle, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(serverURL, "/")+wimse.BundlePath, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch bundle: %w: status %d", ErrUnavailable, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, wimse.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: %w", err)
	}
	return wimse.ParseBundle(trustDomain, data)
}
