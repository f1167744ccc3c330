// Package devtools holds programs used only to develop Trustfabric, never
// imported by the library or shipped in the CLI:
//
//   - genvectors regenerates the project's own SCITT test vectors
//     (testdata/trustfabric-v1; `go generate ./pkg/scitt`);
//   - selftestenv runs the test/dev environment of pkg/server/servertest on
//     loopback for the CI self-tests (.ci/ci.sh, .github/selftest);
//   - rekorload drives Sigstore's Rekor v2 with signed hashedrekord entries
//     in a closed loop and verifies every answer, for the side-by-side
//     benchmark bench/peers/rekor/run.sh;
//   - interop (no Go) holds transmute.cjs, SCITT objects made and verified
//     by @transmute/cose for cmd/trustfabric's TestTransmuteInterop, with its
//     exact npm versions (package-lock.json) and install.sh.
package devtools
