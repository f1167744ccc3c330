// Package attest runs the build side of Trustfabric in one process (design.md
// §1 steps 1-5): obtain a WIMSE workload identity, build (or accept) the
// in-toto provenance of an OCI image, sign it as a SCITT Signed Statement,
// register it with a Transparency Service and attach the receipted statement
// to the image as an OCI 1.1 referrer.
//
// # Steps
//
//  1. identity: the CI platform's OIDC token is exchanged at the Identity
//     Server for a Workload Identity Token bound to a fresh ES256 key
//     (workload.Obtain; draft-ietf-wimse-workload-creds §3). The private key
//     lives only in memory.
//  2. provenance: the image tag is resolved to a digest once, then an in-toto
//     Statement v1 with a SLSA Provenance v1 predicate is built from the CI
//     context (package provenance), or a user-supplied statement is used as
//     given (a bare predicate is wrapped in a statement about the image).
//  3. sign: a COSE_Sign1 hash envelope (RFC 9943 + draft-ietf-cose-hash-envelope)
//     with iss = the WIT's sub, sub = oci://<registry>/<repository>@sha256:<hex>,
//     259 = the preimage media type and the WIT in the "wit" protected header
//     (design.md §2.1).
//  4. register: SCRAPI POST /entries (draft-ietf-scitt-scrapi §2.1), sent with
//     the Workload-Identity-Token and Workload-Proof-Token headers; the COSE
//     Receipt (RFC 9942) is checked against the service's published keys.
//  5. attach: the receipt goes under unprotected label 394 and the transparent
//     statement plus its preimage are pushed as a referrer of the image
//     (design.md §2.5).
//
// If attaching fails after the registration succeeded, Run returns a
// *NotAttachedError (errors.Is ErrNotAttached) naming the entry id and the
// files the statement and preimage were saved to, so nothing is lost and the
// attach can be retried.
//
// # CI outputs
//
// WriteOutputs publishes the facts where each platform reads them: GitHub
// Actions step outputs and a Markdown job summary, a GitLab dotenv report,
// Tekton result files.
package attest
