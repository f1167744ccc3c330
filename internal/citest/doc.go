// Package citest holds the offline checks of Trustfabric's CI integrations
// (action.yml files, workflows, GitLab components) and the fakes they need: a
// GitHub Actions OIDC issuer and runner token endpoint shaped like GitHub's, and
// a harness that runs a composite action's shell steps the way the runner does.
//
// # What is checked
//
//   - Every action.yml parses strictly (unknown keys rejected), documents every
//     input and output, wires every output to an existing step, never expands
//     ${{ }} inside run:, and never calls a sibling action with uses: ./….
//   - actionlint (as a library) reports nothing on .github/workflows and on
//     examples/github rewritten to local references.
//   - The GitLab components validate against GitLab's CI JSON schema, header and
//     body separately, with every $[[ inputs.x ]] declared and typed.
//
// See docs/design/ci.md and the CI digest (specs/ci.md §1.8, §3.3, §5).
package citest
