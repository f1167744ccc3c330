#!/usr/bin/env bash
# Starts, on loopback, what the self-test needs: an OCI registry (olareg, or the
# one in TF_SELFTEST_REGISTRY) and `trustfabric serve` hosting the Transparency
# Service and the Identity Server. The Identity Server trusts the GitHub OIDC
# issuer of this run: GitHub's own, or the loopback fake that .ci/ci.sh gives act
# through TF_SELFTEST_OIDC_ISSUER. `services.sh stop` stops what it started.
set -euo pipefail
state="${RUNNER_TEMP:-/tmp}/trustfabric-selftest"
if [ "${1:-}" = stop ]; then
  for f in "$state"/*.pid; do
    if [ -e "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
  done
  exit 0
fi
mkdir -p "$state"
tf="${TRUSTFABRIC:-trustfabric}"
gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "timed out waiting for $1" >&2
  return 1
}

registry="${TF_SELFTEST_REGISTRY:-}"
if [ -z "$registry" ]; then
  command -v olareg >/dev/null || go install github.com/olareg/olareg/cmd/olareg@v0.1.2
  port="$(free_port)"
  olareg serve --addr 127.0.0.1 --port "$port" --store-type mem >"$state/registry.log" 2>&1 &
  echo $! >"$state/registry.pid"
  registry="127.0.0.1:$port"
  wait_http "http://$registry/v2/" || { cat "$state/registry.log" >&2; exit 1; }
fi

port="${TF_SELFTEST_PORT:-$(free_port)}"
base="http://127.0.0.1:$port"
provider="${TF_SELFTEST_PROVIDER:-github}"
case "$provider" in
github)
  issuer="${TF_SELFTEST_OIDC_ISSUER:-https://token.actions.githubusercontent.com}"
  project="${GITHUB_REPOSITORY:-trustfabric/trustfabric}"
  allow="repository: [\"$project\"]"
  ;;
gitlab)
  issuer="${TF_SELFTEST_OIDC_ISSUER:?the GitLab self-test needs the fake issuer in TF_SELFTEST_OIDC_ISSUER}"
  project="${TF_SELFTEST_PROJECT:-acme/app}"
  allow="project_path: [\"$project\"]"
  ;;
*)
  echo "TF_SELFTEST_PROVIDER must be github or gitlab" >&2
  exit 2
  ;;
esac
cat >"$state/identity.yaml" <<YAML
trustDomain: selftest.trustfabric.dev
issuer: $base
witLifetime: 10m
providers:
  - type: $provider
    issuer: $issuer
    audience: $base
    allow:
      $allow
YAML
"$tf" serve --addr "127.0.0.1:$port" --data "$state/data" --issuer "$base" \
  --identity-config "$state/identity.yaml" >"$state/serve.log" 2>&1 &
echo $! >"$state/serve.pid"
wait_http "$base/healthz" || { cat "$state/serve.log" >&2; exit 1; }

# Pin the service's keys as a deployer would.
curl -fsS -o "$state/ts-keys.cbor" "$base/.well-known/scitt-keys"
cat >"$state/policy.yaml" <<YAML
apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: $base
    keys: [ts-keys.cbor]
identities:
  - trustDomain: selftest.trustfabric.dev
    bundleURL: $base/.well-known/wit-bundle
workloads:
  - prefix: spiffe://selftest.trustfabric.dev/$provider/
provenance:
  predicateTypes: [https://slsa.dev/provenance/v1]
YAML
{
  echo "registry=$registry"
  echo "ts-url=$base"
  echo "identity-server=$base"
  echo "policy=$state/policy.yaml"
} >>"${GITHUB_OUTPUT:-/dev/stdout}"
echo "services: registry $registry, trustfabric $base ($provider issuer trusted: $issuer)"
