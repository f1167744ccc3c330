// Package wimse implements the WIMSE workload credentials Trustfabric issues and
// checks: the Workload Identity Token (WIT), the Workload Proof Token (WPT), the
// workload identifiers they carry, and the HTTP plumbing that sends and verifies
// them.
//
// # Specifications
//
//   - WIT: draft-ietf-wimse-workload-creds-02 §3 (JWT form), in the SPIFFE
//     WIT-SVID profile (spiffe/spiffe standards/WIT-SVID.md): typ "wit+jwt",
//     kid always set, sub a SPIFFE ID, no aud, cnf.jwk with alg, RS/ES/PS only.
//   - WPT: draft-ietf-wimse-wpt-02 §3: typ "wpt+jwt" (accepted also as
//     "application/wpt+jwt"), aud, exp, jti, wth = base64url(SHA-256(WIT)).
//   - Workload identifiers: draft-ietf-wimse-identifier-03 §3; spiffe:// ids are
//     validated by go-spiffe's spiffeid package.
//   - HTTP headers: Workload-Identity-Token and Workload-Proof-Token
//     (workload-creds §3.3, wpt §3.2).
//
// # Values
//
// [ParseWIT] and [VerifyWPT] parse once and return validated values; the raw
// compact serialization is kept and never re-encoded. Minting is done with
// [MintWIT] and [MintWPT]. Every token is parsed with an explicit algorithm
// list; "none" and symmetric algorithms are never accepted.
//
// # Identifiers
//
// SPIFFE path segments allow only letters, digits, '.', '-' and '_'. Values
// from CI systems (branch names such as "feature/x@y") are carried in
// identifiers through [EncodeSegment], a reversible escaping documented there,
// so that distinct values never collide and go-spiffe never rejects the result.
//
// # HTTP
//
// [Transport] adds a WIT and a fresh WPT to each outgoing request;
// [Authenticator] verifies both on the server side, keeps a bounded replay cache
// of WPT jti values, and [Authenticator.Middleware] puts the verified identity
// into the request context ([FromContext]).
package wimse
