package wimse

// Wire constants of the Identity Server's token exchange (design §2.4), shared
// by the server (pkg/identity) and the workload side (pkg/workload).
const (
	// GrantTypeTokenExchange is RFC 8693's grant_type.
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeIDToken is the subject_token_type of CI OIDC ID tokens.
	TokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	// TokenTypeJWT is the subject_token_type of Kubernetes service-account
	// tokens and JWT-SVIDs, and the requested_token_type of a WIT.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
	// TypeDPoP is the typ of a DPoP proof JWT (RFC 9449 §4.2).
	TypeDPoP = "dpop+jwt"
	// TokenPath and BundlePath are the Identity Server's routes.
	TokenPath  = "/token"
	BundlePath = "/.well-known/wit-bundle"
)

// TokenResponse is the RFC 8693 §2.2.1 response of a successful exchange:
// AccessToken is the WIT, IssuedTokenType TokenTypeJWT, TokenType "N_A".
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}
