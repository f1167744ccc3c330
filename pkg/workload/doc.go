// Package workload is the workload side of WIMSE identity (design §1 step 1,
// §2.4): what a CI job runs to become a workload with a Workload Identity
// Token, and to call services with it.
//
//   - [Obtain] detects the CI platform (GitHub Actions, GitLab CI, Kubernetes
//     / Tekton, or a SPIFFE agent), reads its OIDC token through pkg/ci, and
//     exchanges it for a WIT bound to a fresh ES256 key ([Exchange]: RFC 8693
//     token exchange with a DPoP proof, RFC 9449).
//   - [Credentials.HTTPClient] returns an http.Client that adds the
//     Workload-Identity-Token and a fresh Workload-Proof-Token to each request.
//   - [FetchBundle] fetches an Identity Server's WIT bundle.
//
// It is split from pkg/identity (the Identity Server) by audience: the server
// does not import the CI token sources, and CI jobs do not import the
// server's OIDC verification (go-oidc).
package workload
