// Package archtest holds the test that keeps docs/design/architecture.md
// true: the package list, the floors and the dependency rules it states are
// checked against `go list`.
package archtest
