#!/usr/bin/env bash
# CI of the CI integrations (issue 7); .ci/run calls it. It
#   1. runs the nested Tekton module's validation tests;
#   2. shellchecks the action scripts and reruns actionlint with shellcheck;
#   3. runs the GitHub self-test workflow end to end under act (host mode, offline,
#      OIDC from a loopback fake) and the GitLab components under
#      gitlab-ci-local (shell executor, injected ID token), each attesting and
#      verifying a real image in a registry on loopback, against the services
#      of devtools/selftestenv.
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
  rm -rf "$work"
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}
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
for c in identity attest verify; do
  has_cmd "$tools/trustfabric" "$c" || missing+=("$c")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "FAIL: the act and gitlab-ci-local self-tests need 'trustfabric ${missing[*]}', which this build lacks."
  exit 1
fi
go build -o "$tools/selftestenv" ./devtools/selftestenv
go_tool crane github.com/google/go-containerregistry/cmd/crane v0.22.1
go_tool act github.com/nektos/act v0.2.89

# start_env PROVIDER NAME: selftestenv (Identity Server, Transparency Service,
# registry, CI OIDC fake) in the background; its variables in $work/NAME.env.
start_env() {
  "$tools/selftestenv" -provider "$1" -repository trustfabric/trustfabric -dir "$work/$2" \
    -env-file "$work/$2.env" >"$work/$2.log" 2>&1 &
  pids+=($!)
  wait_file "$work/$2.env" || { cat "$work/$2.log" >&2; return 1; }
}

section "act: .github/workflows/selftest.yml (host mode, offline)"
repo="$work/github"
copy_tree "$repo"
(cd "$repo" && git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm selftest &&
  git remote add origin https://github.com/trustfabric/trustfabric.git)
start_env github github-env
# act leaves out variables the real runner sets (specs/ci.md §1.8).
cat >"$work/act.env" <<ENV
GITHUB_REPOSITORY=trustfabric/trustfabric
GITHUB_REPOSITORY_ID=89012345
GITHUB_REPOSITORY_OWNER_ID=1234567
GITHUB_WORKFLOW_REF=trustfabric/trustfabric/.github/workflows/selftest.yml@refs/heads/main
GITHUB_WORKFLOW_SHA=$(git -C "$repo" rev-parse HEAD)
GITHUB_ACTOR_ID=583231
GITHUB_TRIGGERING_ACTOR=octocat
GITHUB_REF_PROTECTED=false
RUNNER_ENVIRONMENT=self-hosted
RUNNER_NAME=act
ENV
cat "$work/github-env.env" >>"$work/act.env"
(cd "$repo" && timeout 900 act push -W .github/workflows/selftest.yml \
  -P ubuntu-latest=-self-hosted --action-offline-mode \
  --env-file "$work/act.env")

section "gitlab-ci-local: gitlab/templates attest and verify"
apt_install rsync rsync
if ! gitlab-ci-local --version 2>/dev/null | grep -q '^4\.56\.'; then
  echo "installing gitlab-ci-local 4.56.2 (builds the re2 module: a few minutes)"
  npm install -g gitlab-ci-local@4.56.2 >/dev/null
fi
gl="$work/gitlab"
mkdir -p "$gl/templates"
cp gitlab/templates/*.yml "$gl/templates/"
cp gitlab/selftest/.gitlab-ci.yml "$gl/.gitlab-ci.yml"
(cd "$gl" && git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm selftest &&
  git remote add origin https://gitlab.example.org/trustfabric/components.git)
# Started last: the GitLab fake's ID token is valid for 5 minutes.
start_env gitlab gitlab-env
# shellcheck disable=SC1091
. "$work/gitlab-env.env"
# gitlab-ci-local sets GITLAB_CI=false; the CLI reads the job as GitLab's.
(cd "$gl" && timeout 900 gitlab-ci-local --variable GITLAB_CI=true \
  --variable "TRUSTFABRIC_ID_TOKEN=$TRUSTFABRIC_ID_TOKEN" \
  --variable "TF_SELFTEST_REGISTRY=$TF_SELFTEST_REGISTRY" \
  --variable "TF_SELFTEST_TS=$TF_SELFTEST_TS" \
  --variable "TF_SELFTEST_IDS=$TF_SELFTEST_IDS" \
  --variable "TF_SELFTEST_POLICY=$TF_SELFTEST_POLICY" \
  --variable "TF_SELFTEST_CLI=$tools/trustfabric")

echo "ci.sh: passed"
