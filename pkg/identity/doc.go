// Package identity is the Trustfabric Identity Server: it exchanges a CI
// platform's OIDC token for a WIMSE Workload Identity Token (WIT) bound to a
// key the workload proves it holds.
//
// # Protocol
//
//   - POST /token: OAuth 2.0 Token Exchange (RFC 8693 §2) with
//     grant_type urn:ietf:params:oauth:grant-type:token-exchange, the CI token
//     as subject_token (type …:id_token, or …:jwt for Kubernetes service
//     account tokens), requested_token_type …:jwt, and a DPoP proof
//     (RFC 9449 §4) of the key that goes into the WIT's cnf.jwk. Errors are
//     RFC 6749 §5.2 JSON errors; DPoP failures use invalid_dpop_proof
//     (RFC 9449 §5).
//   - GET /.well-known/wit-bundle: the signing keys as a JWK Set with use
//     "wit-svid" (SPIFFE WIT-SVID profile), for go-spiffe's witbundle.
//
// # CI token verification
//
// Each trusted issuer is configured with its exact iss, the exact audience
// its tokens must carry, and keys by OIDC discovery (go-oidc) or a pinned JWKS
// file. Only RS256 and ES256 are accepted; exp, nbf and iat are checked with
// at most 60 s leeway; a jti is accepted once.
//
// # Providers and policy
//
// Providers (github, gitlab, kubernetes, oidc) are small tables of required
// claims, claims copied into the WIT under "https://trustfabric.dev/ci", and a
// default identifier template (see [Template]). The issuance policy is a YAML
// file ([ParseConfig]); by default it refuses GitHub pull_request_target runs
// and GitLab merge-request pipelines from forks. WITs live at most 15 minutes
// and never past the CI token's exp.
//
// The server never logs a token or a key.
package identity
