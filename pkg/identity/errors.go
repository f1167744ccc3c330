package identity

import "errors"

// Sentinel errors; every error of this package wraps one of them (or one of
// package wimse's).
var (
	// ErrConfig: the identity configuration is invalid.
	ErrConfig = errors.New("invalid identity configuration")
	// ErrUntrustedIssuer: the CI token's iss is not a configured provider.
	ErrUntrustedIssuer = errors.New("untrusted CI token issuer")
	// ErrIssuerUnavailable: discovery or JWKS of a trusted issuer failed.
	ErrIssuerUnavailable = errors.New("CI token issuer unavailable")
	// ErrPolicy: the token is valid but the issuance policy refuses it.
	ErrPolicy = errors.New("refused by issuance policy")
	// ErrClaims: a claim the provider needs is missing or malformed.
	ErrClaims = errors.New("missing or malformed CI token claim")
	// ErrDPoP: the DPoP proof is missing or invalid.
	ErrDPoP = errors.New("invalid DPoP proof")
	// ErrRequest: the token request is malformed (form, grant or token type).
	ErrRequest = errors.New("invalid token request")
	// ErrTooLarge: a request body or token exceeds its size limit.
	ErrTooLarge = errors.New("request too large")
)
