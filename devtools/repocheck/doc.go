// Package repocheck holds tests of the repository's documents and examples,
// run by `go test ./...` in .ci/run: every relative link in every Markdown
// file resolves (file and #anchor), and every verification policy under
// examples/ passes `trustfabric policy check`. It has no API.
package repocheck
