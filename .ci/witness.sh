#!/usr/bin/env bash
# Independent witness: filippo.io/torchwood's litewitness (C2SP tlog-witness),
# built once from the Go module proxy into a cache outside the clone, then the
# tests that run it on loopback. Fails if they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

version=v0.6.1
dir="${XDG_CACHE_HOME:-$HOME/.cache}/trustfabric/litewitness/$version"
if [ ! -x "$dir/litewitness" ] || [ ! -x "$dir/witnessctl" ]; then
  echo "installing litewitness and witnessctl $version into $dir"
  GOBIN="$dir" go install "filippo.io/torchwood/cmd/litewitness@$version" "filippo.io/torchwood/cmd/witnessctl@$version"
fi
if ! command -v ssh-agent >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssh-client >/dev/null
fi
export TRUSTFABRIC_LITEWITNESS_DIR="$dir"

out=$(go test -count=1 -v -run '^TestIndependentWitnesses$' ./pkg/transparency/ 2>&1) || { echo "$out"; exit 1; }
if grep -q -- '--- SKIP' <<<"$out" || ! grep -q -- '--- PASS: TestIndependentWitnesses' <<<"$out"; then
  echo "$out"; echo "the independent witness test did not run"; exit 1
fi
echo "litewitness $version: TestIndependentWitnesses passed"
