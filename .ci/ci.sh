#!/usr/bin/env bash
# CI of the CI integrations (issue 7); .ci/run calls it. It
#   1. runs the nested Tekton module's validation tests;
#   2. shellchecks the action scripts and reruns actionlint with shellcheck;
#   3. runs the GitHub self-test workflow end to end under act (host mode, offline,
#      OIDC from a loopback fake), the isolated attest workflow as a caller
#      calls it (the gate allows what it attested under a policy requiring it as
#      the builder, and denies what the caller's own job attested), and the
#      GitLab components under
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
# The cosign peer comparison is run by hand (too heavy for CI); CI keeps it parseable and clean.
bash -n bench/peers/cosign/run.sh && shellcheck bench/peers/cosign/run.sh

section "actionlint (with shellcheck) and action metadata"
go test -count=1 -run 'TestActionMetadata|TestWorkflowLint|TestSelftestWorkflowLint|TestExampleWorkflowLint' ./internal/citest/

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

# start_env PROVIDER NAME [FLAG…]: selftestenv (Identity Server, Transparency
# Service, registry, CI OIDC fake) in the background; its variables in
# $work/NAME.env.
start_env() {
  local provider="$1" name="$2"
  shift 2
  "$tools/selftestenv" -provider "$provider" -repository trustfabric/trustfabric -dir "$work/$name" \
    -env-file "$work/$name.env" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_file "$work/$name.env" || { cat "$work/$name.log" >&2; return 1; }
}
# env_get FILE KEY: a value from a KEY=VALUE file.
env_get() { sed -n "s/^$2=//p" "$1" | head -n1; }
# act_repo DIR: the tree as a git repository whose origin is this project's.
act_repo() {
  copy_tree "$1"
  (cd "$1" && git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm selftest &&
    git remote add origin https://github.com/trustfabric/trustfabric.git)
}
# runner_env REPO WORKFLOW: what act leaves out of the variables the real
# runner sets (specs/ci.md §1.8), for a run of WORKFLOW (a path in the repository).
runner_env() {
  cat <<ENV
GITHUB_REPOSITORY=trustfabric/trustfabric
GITHUB_REPOSITORY_ID=89012345
GITHUB_REPOSITORY_OWNER_ID=1234567
GITHUB_WORKFLOW_REF=trustfabric/trustfabric/$2@refs/heads/main
GITHUB_WORKFLOW_SHA=$(git -C "$1" rev-parse HEAD)
GITHUB_ACTOR_ID=583231
GITHUB_TRIGGERING_ACTOR=octocat
GITHUB_REF_PROTECTED=false
RUNNER_ENVIRONMENT=self-hosted
RUNNER_NAME=act
ENV
}

section "act: .github/workflows/selftest.yml (host mode, offline)"
repo="$work/github"
act_repo "$repo"
start_env github github-env
{ runner_env "$repo" .github/workflows/selftest.yml; cat "$work/github-env.env"; } >"$work/act.env"
(cd "$repo" && timeout 900 act push -W .github/workflows/selftest.yml \
  -P ubuntu-latest=-self-hosted --action-offline-mode \
  --env-file "$work/act.env")

section "act: the isolated attest workflow (.github/selftest/isolated.yml) and the gate's builder rule"
# One set of services, two act runs of the caller workflow, one job (and its
# needs) each. On GitHub the runner's ACTIONS_ID_TOKEN_REQUEST_TOKEN belongs to
# the job, and a job of a called reusable workflow gets a token whose
# job_workflow_ref names that workflow; act gives every job the same
# variables, so each run gets the request token of the job that signs in it
# (selftestenv -job): run 1 the isolated workflow's job, run 2 the caller's
# own job. The reusable workflow and the action it uses
# (trustfabric/trustfabric@v1) come from this tree (--local-repository), and
# the action builds the CLI from that source (v1 is not a release tag).
iso_repo="$work/isolated"
act_repo "$iso_repo"
iso_workflow=.github/selftest/isolated.yml
iso_ref=trustfabric/trustfabric/.github/workflows/attest-isolated.yml@refs/tags/v1
start_env github isolated-env -workflow "$iso_workflow" -job "isolated=$iso_ref" \
  -require-builder "https://github.com/trustfabric/trustfabric/.github/workflows/attest-isolated.yml@refs/tags/v1*"
ienv="$work/isolated-env.env"
for v in TF_SELFTEST_REGISTRY TF_SELFTEST_TS TF_SELFTEST_IDS; do
  echo "$v=$(env_get "$ienv" "$v")"
done >"$work/isolated.vars"
# act_isolated JOB REQUEST_TOKEN: run JOB of the caller workflow with the
# runner token endpoint minting the claims of REQUEST_TOKEN's job.
act_isolated() {
  { runner_env "$iso_repo" "$iso_workflow"
    echo "ACTIONS_ID_TOKEN_REQUEST_URL=$(env_get "$ienv" ACTIONS_ID_TOKEN_REQUEST_URL)"
    echo "ACTIONS_ID_TOKEN_REQUEST_TOKEN=$2"; } >"$work/isolated-$1.env"
  (cd "$iso_repo" && timeout 900 act push -W "$iso_workflow" -j "$1" \
    -P ubuntu-latest=-self-hosted --action-offline-mode \
    --local-repository "trustfabric/trustfabric@v1=$iso_repo" \
    --env-file "$work/isolated-$1.env" --var-file "$work/isolated.vars")
}
act_isolated check "$(env_get "$ienv" TF_SELFTEST_JOB_ISOLATED_REQUEST_TOKEN)"
act_isolated direct "$(env_get "$ienv" ACTIONS_ID_TOKEN_REQUEST_TOKEN)"
# gate EXIT POLICY IMAGE [REASON]: trustfabric verify must exit EXIT and, on
# deny, give REASON (a fixed string) among its reasons.
gate() {
  local want="$1" policy="$2" image="$3" reason="${4:-}" digest rc=0
  digest="$(crane digest --insecure "$(env_get "$ienv" TF_SELFTEST_REGISTRY)/selftest/$image:latest")"
  trustfabric verify --policy "$policy" "$(env_get "$ienv" TF_SELFTEST_REGISTRY)/selftest/$image@$digest" \
    >"$work/gate.out" 2>"$work/gate.err" || rc=$?
  if [ "$rc" != "$want" ] || { [ -n "$reason" ] && ! grep -qF -- "$reason" "$work/gate.err"; }; then
    echo "FAIL: verify of the $image image under $(basename "$policy") exited $rc, want $want${reason:+ with the reason: $reason}" >&2
    cat "$work/gate.out" "$work/gate.err" >&2
    return 1
  fi
  echo "ok: $image under $(basename "$policy"): exit $rc${reason:+ ($reason)}"
}
builder_policy="$(env_get "$ienv" TF_SELFTEST_BUILDER_POLICY)"
caller_builder="https://github.com/trustfabric/trustfabric/$iso_workflow@refs/heads/main"
# Every statement is sound without the builder rule…
for image in isolated direct forged; do gate 0 "$(env_get "$ienv" TF_SELFTEST_POLICY)" "$image"; done
# …and with it only the isolated workflow's passes: the caller's job is denied
# on its provenance's builder, and on the builder its WIT was issued to when
# its provenance names the isolated workflow.
gate 0 "$builder_policy" isolated
gate 1 "$builder_policy" direct "builder \"$caller_builder\" is not allowed"
gate 1 "$builder_policy" forged "but the workload identity was issued to workflow ${caller_builder#https://github.com/}"

section "gitlab-ci-local: gitlab/templates attest and verify"
apt_install rsync rsync
if ! gitlab-ci-local --version 2>/dev/null | grep -q '^4\.56\.'; then
  echo "installing gitlab-ci-local 4.56.2 (builds the re2 module: a few minutes)"
  npm install -g gitlab-ci-local@4.56.2 >/dev/null
fi
gl="$work/gitlab"
mkdir -p "$gl/templates"
# The components run in Trustfabric's shell image (cli-image); gitlab-ci-local
# would run that with Docker, which this machine has no daemon for. The copy
# it runs drops the job image (the shell executor then runs the script with
# the CLI built above, the cli input); .ci/image.sh runs the verify script in
# the image's own busybox sh and CLI.
for f in gitlab/templates/*.yml; do
  sed '/^  image:$/,/^    entrypoint: \[""\]$/d' "$f" >"$gl/templates/$(basename "$f")"
  if grep -q 'inputs.cli-image ]]' "$gl/templates/$(basename "$f")" || ! grep -q 'inputs.cli-image ]]' "$f"; then
    echo "FAIL: $f: the job image block is not where ci.sh expects it" >&2
    exit 1
  fi
done
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
