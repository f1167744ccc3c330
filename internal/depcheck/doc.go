// Package depcheck holds only a test: the layering rules of the module
// (docs/design, issue 10), checked against `go list -deps` so that an import
// that runs back up the layers fails `go test ./...` (after
// go-containerregistry's pkg/registry/depcheck_test.go).
package depcheck
