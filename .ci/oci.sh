#!/usr/bin/env bash
# OCI interop check: attach with our CLI to Debian's docker-registry (CNCF distribution, no
# referrers API, so the sha256-<hex> tag schema is used) and check that `oras discover`, an
# independent client, sees exactly our referrers. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v jq >/dev/null || need_apt+=(jq)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
export PATH="$PATH:$(go env GOPATH)/bin"
if ! oras version 2>/dev/null | grep -q '1.3.6'; then
  go install oras.land/oras/cmd/oras@v1.3.6
fi

tmp=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cat > "$tmp/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$tmp/config.yml" >"$tmp/registry.log" 2>&1 &
reg_pid=$!
cleanup() { kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 50); do
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || { echo "docker-registry did not start"; cat "$tmp/registry.log"; exit 1; }

echo "== attach three statements with trustfabric to docker-registry on 127.0.0.1:$port"
TRUSTFABRIC_TEST_REGISTRY="127.0.0.1:$port" TRUSTFABRIC_TEST_OUT="$tmp/ref" \
  go test -count=1 -run '^TestExternalRegistry$' ./cmd/trustfabric
img=$(cat "$tmp/ref")
go build -o "$tmp/trustfabric" ./cmd/trustfabric

echo "== oras discover $img"
oras discover --plain-http --format json --artifact-type application/scitt-statement+cose "$img" >"$tmp/oras.json"
"$tmp/trustfabric" discover "$img" --output json >"$tmp/tf.json"

ours=$(jq -r '.referrers[].digest' "$tmp/tf.json" | sort)
theirs=$(jq -r '(.referrers // .manifests)[].digest' "$tmp/oras.json" | sort)
types=$(jq -r '(.referrers // .manifests)[].artifactType' "$tmp/oras.json" | sort -u)
count=$(printf '%s\n' "$ours" | grep -c . || true)
echo "trustfabric: $count referrers; oras: $(printf '%s\n' "$theirs" | grep -c . || true)"
if [ "$count" -ne 3 ]; then echo "FAIL: trustfabric lists $count referrers, want 3"; cat "$tmp/tf.json"; exit 1; fi
if [ "$ours" != "$theirs" ]; then echo "FAIL: oras and trustfabric disagree"; cat "$tmp/oras.json" "$tmp/tf.json"; exit 1; fi
if [ "$types" != "application/scitt-statement+cose" ]; then echo "FAIL: oras sees artifact types: $types"; exit 1; fi
# The annotations survive the tag index: oras sees our issuer on every entry.
if [ "$(jq -r '[(.referrers // .manifests)[].annotations["dev.trustfabric.issuer"]] | map(select(. != null)) | length' "$tmp/oras.json")" -ne 3 ]; then
  echo "FAIL: oras does not see the dev.trustfabric.issuer annotations"; cat "$tmp/oras.json"; exit 1
fi
echo "OCI interop: oras discover agrees with trustfabric (3 referrers, tag schema)"
