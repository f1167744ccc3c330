#!/usr/bin/env bash
# Provides what the self-test attests and verifies against, on loopback: an
# OCI registry, a Transparency Service and an Identity Server, all real
# components run by devtools/selftestenv. When TF_SELFTEST_TS is
# already set (.ci/ci.sh starts the services itself for act, with the OIDC
# fake) it only publishes them; otherwise it starts them, trusting this run's
# GitHub OIDC issuer. Writes the step outputs registry, ts-url,
# identity-server and policy. `services.sh stop` stops what it started.
set -euo pipefail
state="${RUNNER_TEMP:-/tmp}/trustfabric-selftest"
if [ "${1:-}" = stop ]; then
  if [ -e "$state/selftestenv.pid" ]; then kill "$(cat "$state/selftestenv.pid")" 2>/dev/null || true; fi
  exit 0
fi

if [ -z "${TF_SELFTEST_TS:-}" ]; then
  if [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ]; then
    echo "services.sh: no OIDC token for this job: the self-test needs 'permissions: id-token: write'" >&2
    exit 1
  fi
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  mkdir -p "$state"
  (cd "$root" && go build -o "$state/selftestenv" ./devtools/selftestenv)
  "$state/selftestenv" -provider github -issuer "${TF_SELFTEST_OIDC_ISSUER:-https://token.actions.githubusercontent.com}" \
    -repository "${GITHUB_REPOSITORY:?}" -dir "$state/data" -env-file "$state/env" >"$state/selftestenv.log" 2>&1 &
  echo $! >"$state/selftestenv.pid"
  for _ in $(seq 1 300); do
    [ -s "$state/env" ] && break
    if ! kill -0 "$(cat "$state/selftestenv.pid")" 2>/dev/null; then
      cat "$state/selftestenv.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  # shellcheck disable=SC1091
  . "$state/env"
fi
{
  echo "registry=${TF_SELFTEST_REGISTRY:?}"
  echo "ts-url=${TF_SELFTEST_TS:?}"
  echo "identity-server=${TF_SELFTEST_IDS:?}"
  echo "policy=${TF_SELFTEST_POLICY:?}"
} >>"${GITHUB_OUTPUT:-/dev/stdout}"
echo "services: registry $TF_SELFTEST_REGISTRY, transparency service $TF_SELFTEST_TS, identity server $TF_SELFTEST_IDS"
