// Package devtools holds programs used only to develop Trustfabric, never
// imported by the library or shipped in the CLI:
//
//   - genvectors regenerates the project's own SCITT test vectors
//     (testdata/trustfabric-v1; `go generate ./pkg/scitt`);
//   - selftestenv runs the test/dev environment of pkg/server/servertest on
//     loopback for the CI self-tests (.ci/ci.sh, .github/selftest).
package devtools
