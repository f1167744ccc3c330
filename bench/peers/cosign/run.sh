#!/usr/bin/env bash
# Issue 13's peer comparison: `trustfabric verify` against `cosign verify-attestation`
# (cosign v2, offline key), process to process, on one image carrying 50 attestations of
# each tool, on a referrers-API registry (olareg) and on Debian's docker-registry (CNCF
# distribution, no referrers API). See README.md beside this file.
#
#   bash bench/peers/cosign/run.sh            # N=15 repetitions, 50 attestations
#   N=31 ATTESTATIONS=50 bash bench/peers/cosign/run.sh
#
# Builds (once, cached in $CACHE): cosign and crane from the Go module proxy, olareg
# (go.mod's version) from the proxy through this module; docker-registry from Debian. Starts everything on loopback
# with its own files under a temporary directory, removed at the end; the system's
# docker-registry service is not touched. Exits non-zero if any verification in the
# timed loop fails, or if a sanity check (both tools deny an unattested image) fails.
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$repo_root"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

N=${N:-15}
ATTESTATIONS=${ATTESTATIONS:-50}
COSIGN_VERSION=${COSIGN_VERSION:-v2.6.5}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trustfabric/bin}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# install NAME VERSION PACKAGE: go install PACKAGE@VERSION into $CACHE/NAME-VERSION once.
install() {
  local dir="$CACHE/$1-$2"
  if [ ! -x "$dir/$1" ]; then
    log "building $1 $2 from the Go module proxy into $dir (once)"
    mkdir -p "$dir"
    GOBIN="$dir" go install "$3@$2"
  fi
  printf '%s/%s\n' "$dir" "$1"
}
cosign=$(install cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v2/cmd/cosign)
# olareg's version is the one go.mod pins (it is the project's test registry): built
# inside this module, as `go install olareg@VERSION` needs the proxy's version list,
# which it refuses for olareg.
OLAREG_VERSION=$(go list -m -f '{{.Version}}' github.com/olareg/olareg)
olareg="$CACHE/olareg-$OLAREG_VERSION/olareg"
if [ ! -x "$olareg" ]; then
  log "building olareg $OLAREG_VERSION (go.mod's) into $(dirname "$olareg") (once)"
  go build -o "$olareg" github.com/olareg/olareg/cmd/olareg
fi
crane=$(install crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane)
if ! command -v docker-registry >/dev/null; then
  log "apt-get install docker-registry"
  apt-get update -qq && apt-get install -y -qq docker-registry >/dev/null
fi

tmp=$(mktemp -d /tmp/trustfabric-peer-cosign.XXXXXX)
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local p
  # SIGTERM: background jobs of a non-interactive shell start with SIGINT ignored.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

log "building trustfabric from $repo_root"
go build -o "$tmp/trustfabric" ./cmd/trustfabric
tf="$tmp/trustfabric"

# freeport: a loopback port nothing listens on now.
freeport() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (: >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
waithttp() {
  local i
  for i in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  die "$1 did not answer"
}

# The live system: Transparency Service + Identity Server + fake GitHub issuer.
log "trustfabric quickstart --serve --keep $tmp/qs"
"$tf" quickstart --serve --keep "$tmp/qs" >"$tmp/quickstart.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$tmp/qs/env.sh" ] && break; sleep 0.1; done
[ -f "$tmp/qs/env.sh" ] || { cat "$tmp/quickstart.log" >&2; die "quickstart --serve wrote no env.sh"; }
# shellcheck disable=SC1091
. "$tmp/qs/env.sh"
policy="$TF_POLICY"
case $policy in /*) ;; *) policy="$PWD/$policy" ;; esac

# olareg (referrers API) and docker-registry (none), each with its own storage.
olareg_port=$(freeport)
mkdir -p "$tmp/olareg"
"$olareg" serve --addr 127.0.0.1 --port "$olareg_port" --dir "$tmp/olareg" -v error >"$tmp/olareg.log" 2>&1 &
pids+=($!)
dist_port=$(freeport)
cat >"$tmp/distribution.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/distribution
http:
  addr: 127.0.0.1:$dist_port
YAML
docker-registry serve "$tmp/distribution.yml" >"$tmp/distribution.log" 2>&1 &
pids+=($!)
waithttp "http://127.0.0.1:$olareg_port/v2/"
waithttp "http://127.0.0.1:$dist_port/v2/"

# Keys and predicates for cosign: an offline key pair, ATTESTATIONS distinct SLSA
# v0.2 predicates (cosign's `slsaprovenance` type).
export COSIGN_PASSWORD=bench-only
(cd "$tmp" && "$cosign" generate-key-pair >/dev/null 2>&1)
for i in $(seq 1 "$ATTESTATIONS"); do
  cat >"$tmp/pred-$i.json" <<JSON
{"builder":{"id":"https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main"},
 "buildType":"https://slsa.dev/container-based-build/v0.1",
 "invocation":{"configSource":{"uri":"git+https://github.com/acme/widgets@refs/heads/main","entryPoint":"build-$i"}},
 "metadata":{"buildInvocationId":"run-$i"}}
JSON
done

# attest_both REGISTRY: copy the quickstart's image there, attach ATTESTATIONS
# attestations with each tool, print the image by digest.
attest_both() {
  local reg=$1 img i
  "$crane" copy "$TF_IMAGE" "$reg/acme/widgets:v1" >/dev/null 2>&1
  img="$reg/acme/widgets@${TF_IMAGE#*@}"
  log "$reg: $ATTESTATIONS x cosign attest, $ATTESTATIONS x trustfabric attest"
  for i in $(seq 1 "$ATTESTATIONS"); do
    "$cosign" attest --key "$tmp/cosign.key" --type slsaprovenance --predicate "$tmp/pred-$i.json" \
      --tlog-upload=false --yes "$img" >>"$tmp/cosign-attest.log" 2>&1 \
      || { tail -20 "$tmp/cosign-attest.log" >&2; die "cosign attest $i on $reg"; }
  done
  # The CI token comes from the quickstart's fake GitHub issuer; each run gets
  # its own run id, so each provenance predicate is distinct.
  for i in $(seq 1 "$ATTESTATIONS"); do
    (
      # shellcheck disable=SC1091
      . "$tmp/qs/ci-env.sh"
      export GITHUB_RUN_ID=$((9876543210 + i)) GITHUB_OUTPUT="$tmp/github_output" GITHUB_STEP_SUMMARY="$tmp/step_summary"
      "$tf" attest "$img" --ts "$TF_TS_URL" --identity-server "$TF_IDENTITY_SERVER"
    ) >>"$tmp/tf-attest.log" 2>&1 || { tail -20 "$tmp/tf-attest.log" >&2; die "trustfabric attest $i on $reg"; }
  done
  printf '%s\n' "$img"
}

cosign_verify() {
  "$cosign" verify-attestation --key "$tmp/cosign.pub" --insecure-ignore-tlog --type slsaprovenance "$1"
}
tf_verify() { "$tf" verify "$1" --policy "$policy" --offline; }

# median FILE: the median of the numbers in FILE, one a line.
median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
now_ms() { local t=$EPOCHREALTIME; printf '%s\n' "$(( ${t%.*} * 1000 + 10#${t#*.} / 1000 ))"; }

results=()
for name in olareg docker-registry; do
  case $name in
    olareg) reg="127.0.0.1:$olareg_port" ;;
    docker-registry) reg="127.0.0.1:$dist_port" ;;
  esac
  img=$(attest_both "$reg")

  # What each tool sees before timing: cosign verifies every attestation (one
  # payload a line on stdout); trustfabric allows on the policy.
  got=$(cosign_verify "$img" 2>"$tmp/cosign-verify.err" | grep -c . || true)
  [ "$got" -eq "$ATTESTATIONS" ] || { cat "$tmp/cosign-verify.err" >&2; die "$name: cosign verified $got attestations, want $ATTESTATIONS"; }
  tf_verify "$img" >"$tmp/tf-verify.out" 2>&1 || { cat "$tmp/tf-verify.out" >&2; die "$name: trustfabric verify did not allow"; }
  grep -q '^ALLOW ' "$tmp/tf-verify.out" || die "$name: trustfabric verify printed no ALLOW"
  refs=$("$tf" discover "$img" --output json | jq '.referrers | length')
  [ "$refs" -eq "$ATTESTATIONS" ] || die "$name: trustfabric discover lists $refs referrers, want $ATTESTATIONS"
  # Both deny an image without attestations.
  "$crane" copy "$TF_UNATTESTED_IMAGE" "$reg/acme/unattested:v1" >/dev/null 2>&1
  bare="$reg/acme/unattested@${TF_UNATTESTED_IMAGE#*@}"
  if cosign_verify "$bare" >/dev/null 2>&1; then die "$name: cosign allowed an unattested image"; fi
  if tf_verify "$bare" >/dev/null 2>&1; then die "$name: trustfabric allowed an unattested image"; fi

  log "$name: timing $N runs of each, interleaved"
  : >"$tmp/cosign.ms"; : >"$tmp/tf.ms"
  for i in $(seq 1 "$N"); do
    for tool in cosign tf; do
      # Alternate which goes first, so neither always runs on a warmer machine.
      if [ $((i % 2)) -eq 0 ]; then tool=$([ "$tool" = cosign ] && echo tf || echo cosign); fi
      t0=$(now_ms)
      if [ "$tool" = cosign ]; then
        cosign_verify "$img" >/dev/null 2>&1 || die "$name: cosign verify-attestation failed in run $i"
      else
        tf_verify "$img" >/dev/null 2>&1 || die "$name: trustfabric verify failed in run $i"
      fi
      echo $(( $(now_ms) - t0 )) >>"$tmp/$tool.ms"
    done
  done
  c=$(median "$tmp/cosign.ms"); t=$(median "$tmp/tf.ms")
  results+=("$(printf '%-16s %6d %10.0f %14.0f %8.2fx' "$name" "$N" "$c" "$t" "$(awk -v t="$t" -v c="$c" 'BEGIN {print t/c}')")")
done

printf '\n%s attestations of each tool on one image; median wall time of N runs, process to process\n' "$ATTESTATIONS"
printf 'cosign %s (verify-attestation --key, --insecure-ignore-tlog), trustfabric %s (verify --offline, receipts + WIT + policy)\n' \
  "$COSIGN_VERSION" "$(git -C "$repo_root" describe --always --dirty 2>/dev/null || echo unknown)"
printf '%-16s %6s %10s %14s %9s\n' registry N cosign_ms trustfabric_ms ratio
printf '%s\n' "${results[@]}"
fail=0
for r in "${results[@]}"; do
  ratio=$(awk '{sub("x","",$5); print $5}' <<<"$r")
  if awk -v r="$ratio" 'BEGIN {exit !(r > 0.5)}'; then echo "over budget (trustfabric > 0.5x cosign): $r"; fail=1; fi
done
exit "$fail"
