#!/usr/bin/env bash
# Independent witness: filippo.io/torchwood's litewitness (C2SP tlog-witness),
# built once from the Go module proxy into a cache outside the clone, then the
# tests that run it on loopback (the service, and attest + verify through the CLI).
# Fails if they skip.
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
out2=$(go test -count=1 -v -run '^TestGateLitewitnessEndToEnd$' ./cmd/trustfabric/ 2>&1) || { echo "$out2"; exit 1; }
for t in TestIndependentWitnesses TestGateLitewitnessEndToEnd; do
  if grep -q -- "--- SKIP: $t" <<<"$out$out2" || ! grep -q -- "--- PASS: $t" <<<"$out$out2"; then
    echo "$out$out2" | grep -vE '^[IWE][0-9]{4} '; echo "the independent witness test $t did not run"; exit 1
  fi
done
echo "litewitness $version: TestIndependentWitnesses and TestGateLitewitnessEndToEnd (attest + verify --offline) passed"
