#!/usr/bin/env bash
# CI of the CI integrations (issue 7); .ci/run calls it. It
#   1. runs the nested Tekton module's validation tests;
#   2. shellchecks the action scripts and reruns actionlint with shellcheck;
#   3. once `trustfabric serve`, `identity`, `attest` and `verify` exist, runs
#      the GitHub self-test workflow end to end under act (host mode, offline,
#      OIDC from a loopback fake) and the GitLab components under
#      gitlab-ci-local (shell executor, injected ID token), each attesting and
#      verifying a real image in a registry on loopback.
# Until those commands land it says so and skips step 3 (it does not fail).
# Needs: Go, apt-get (shellcheck, rsync), npm (gitlab-ci-local 4.56.x), the Go
# module proxy. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
tools="$root/.tmp/ci-tools"
mkdir -p "$tools"
gopath="$(go env GOPATH)"
export PATH="$tools:$gopath/bin:$PATH"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "$work"/*-services; do
    if [ -d "$d" ]; then RUNNER_TEMP="$d" bash "$root/.github/selftest/services.sh" stop || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_file() {
  for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2
  return 1
}
# go_tool NAME PACKAGE VERSION builds a command from the module proxy into
# $tools (in a scratch module: `go install pkg@version` also asks the proxy for
# the module's version list, which some proxies refuse).
go_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local mod="$work/gomod-$1"
  mkdir -p "$mod"
  (cd "$mod" && go mod init scratch >/dev/null 2>&1 && go get "$2@$3" >/dev/null 2>&1 && go build -o "$tools/$1" "$2")
}
# has_cmd CLI NAME: cobra answers `CLI unknown --help` with the root help, so
# look for the subcommand's own usage line.
has_cmd() { "$1" "$2" --help 2>/dev/null | grep -q "trustfabric $2"; }
# copy_tree DEST: the repository's files (tracked and new, not ignored).
copy_tree() {
  mkdir -p "$1"
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$1"
}

section "tekton: validate every Task, StepAction, sample and example (nested module)"
go -C tekton vet ./...
go -C tekton test -count=1 ./...

section "shellcheck of the action scripts"
apt_install shellcheck shellcheck
shellcheck -x actions/lib/*.sh .github/selftest/*.sh .ci/ci.sh

section "actionlint (with shellcheck) and action metadata"
go test -count=1 -run 'TestActionMetadata|TestWorkflowLint|TestExampleWorkflowLint' ./internal/citest/

section "end-to-end runs"
go build -o "$tools/trustfabric" ./cmd/trustfabric
missing=()
for c in serve identity attest verify; do
  has_cmd "$tools/trustfabric" "$c" || missing+=("$c")
done
# The Identity Server is hosted by `serve --identity-config` (issue 4).
if [ "${#missing[@]}" -eq 0 ] && ! "$tools/trustfabric" serve --help 2>/dev/null | grep -q -- '--identity-config'; then
  missing+=("serve --identity-config")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  missing_list="$(printf "'%s' " "${missing[@]}")"
  echo "SKIP: the act and gitlab-ci-local self-tests need trustfabric ${missing_list}which this branch lacks."
  echo "      They run here automatically once it lands (issues 3, 4 and 6)."
  echo "ci.sh: passed (end-to-end runs skipped)"
  exit 0
fi
go build -o "$tools/fakeoidc" ./internal/citest/cmd/fakeoidc
go_tool crane github.com/google/go-containerregistry/cmd/crane v0.22.1
go_tool olareg github.com/olareg/olareg/cmd/olareg v0.1.2
go_tool act github.com/nektos/act v0.2.89

section "act: .github/workflows/selftest.yml (host mode, offline)"
repo="$work/github"
copy_tree "$repo"
(cd "$repo" && git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm selftest &&
  git remote add origin https://github.com/trustfabric/trustfabric.git)
"$tools/fakeoidc" -provider github -repository trustfabric/trustfabric -env-file "$work/github-oidc.env" &
pids+=($!)
wait_file "$work/github-oidc.env"
mkdir -p "$work/act-services"
(cd "$repo" && timeout 900 act push -W .github/workflows/selftest.yml \
  -P ubuntu-latest=-self-hosted --action-offline-mode \
  --env-file "$work/github-oidc.env" --env GITHUB_REPOSITORY=trustfabric/trustfabric)

section "gitlab-ci-local: gitlab/templates attest and verify"
apt_install rsync rsync
if ! gitlab-ci-local --version 2>/dev/null | grep -q '^4\.56\.'; then
  npm install -g gitlab-ci-local@4.56.2 >/dev/null
fi
gl="$work/gitlab"
mkdir -p "$gl/templates"
cp gitlab/templates/*.yml "$gl/templates/"
cp gitlab/selftest/.gitlab-ci.yml "$gl/.gitlab-ci.yml"
(cd "$gl" && git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm selftest &&
  git remote add origin https://gitlab.example.org/trustfabric/components.git)
port="$(free_port)"
"$tools/fakeoidc" -provider gitlab -audience "http://127.0.0.1:$port" -repository trustfabric/components \
  -env-file "$work/gitlab-oidc.env" &
pids+=($!)
wait_file "$work/gitlab-oidc.env"
# shellcheck disable=SC1091
. "$work/gitlab-oidc.env"
mkdir -p "$work/gitlab-services"
RUNNER_TEMP="$work/gitlab-services" TF_SELFTEST_PROVIDER=gitlab TF_SELFTEST_PORT="$port" \
  TF_SELFTEST_OIDC_ISSUER="$TF_SELFTEST_OIDC_ISSUER" TF_SELFTEST_PROJECT=trustfabric/components \
  TRUSTFABRIC="$tools/trustfabric" bash .github/selftest/services.sh >"$work/gitlab-services.out"
get() { sed -n "s/^$1=//p" "$work/gitlab-services.out"; }
(cd "$gl" && timeout 900 gitlab-ci-local --shell-isolation=false \
  --variable "TRUSTFABRIC_ID_TOKEN=$TRUSTFABRIC_ID_TOKEN" \
  --variable "TF_SELFTEST_REGISTRY=$(get registry)" \
  --variable "TF_SELFTEST_TS=$(get ts-url)" \
  --variable "TF_SELFTEST_IDS=$(get identity-server)" \
  --variable "TF_SELFTEST_POLICY=$(get policy)" \
  --variable "TF_SELFTEST_CLI=$tools/trustfabric")

echo "ci.sh: passed"
