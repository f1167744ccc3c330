#!/usr/bin/env bash
# Last step of actions/audit: fail the job when the audit found problems at or
# above fail-on (after the SARIF upload).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

if [ "${TF_RESULT:-}" = "fail" ]; then
  tf_error "trustfabric audit" "${TF_FINDINGS:-some} findings; the report above has each one's fix (see also the code scanning alerts)"
  exit 1
fi
