#!/usr/bin/env bash
# Step script of actions/identity: exchange the platform's OIDC token for a
# WIMSE Workload Identity Token bound to a fresh key (`trustfabric identity`).
# The WIT is a bearer credential: it is masked, and both files are 0600.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

tf_require_cli
cli="$TRUSTFABRIC_CLI"
work="$(tf_workdir)"
provider="${TF_PROVIDER:-auto}"
case "$provider" in
auto | github | gitlab | kubernetes | spiffe) ;;
*)
  tf_error "trustfabric identity" "provider must be one of auto, github, gitlab, kubernetes, spiffe; got \"$provider\""
  exit 2
  ;;
esac
if [ -z "${TF_SERVER:-}" ]; then
  tf_error "trustfabric identity" "the identity-server input is required"
  exit 2
fi

rc=0
tf_check_identity_available "${TF_ON_MISSING_IDENTITY:-fail}" "$provider" || rc=$?
if [ "$rc" -eq 3 ]; then
  tf_output skipped true
  exit 0
fi

wit="$work/identity.wit"
key="$work/identity.key"
args=(identity --server "$TF_SERVER" --provider "$provider" --wit-out "$wit" --key-out "$key")
if [ -n "${TF_AUDIENCE:-}" ]; then
  args+=(--audience "$TF_AUDIENCE")
fi
echo "trustfabric ${args[*]}"
umask 077
env -u GITHUB_OUTPUT -u GITHUB_STEP_SUMMARY "$cli" "${args[@]}"
if [ ! -s "$wit" ] || [ ! -s "$key" ]; then
  tf_error "trustfabric identity" "the CLI exited 0 but did not write $wit and $key"
  exit 1
fi
chmod 600 "$wit" "$key"
tf_mask "$(cat "$wit")"

# The workload identifier is the WIT's sub claim (not secret).
sub=""
payload="$(cut -d. -f2 <"$wit" | tr '_-' '/+')"
case $((${#payload} % 4)) in 2) payload="$payload==" ;; 3) payload="$payload=" ;; esac
if claims="$(printf '%s' "$payload" | base64 -d 2>/dev/null)"; then
  printf '%s' "$claims" >"$work/identity.claims.json"
  sub="$(tf_json_get "$work/identity.claims.json" sub || true)"
  exp="$(tf_json_get "$work/identity.claims.json" exp || true)"
  rm -f "$work/identity.claims.json"
fi

tf_output skipped false
tf_output wit-path "$wit"
tf_output key-path "$key"
tf_output workload-id "$sub"
{
  printf '### Trustfabric: workload identity\n\n'
  printf '| | |\n|---|---|\n'
  printf '| Workload identifier | `%s` |\n' "$(tf_md_cell "${sub:-unknown}")"
  printf '| Identity server | %s |\n' "$(tf_md_cell "$TF_SERVER")"
  [ -n "${exp:-}" ] && printf '| Expires (unix) | %s |\n' "$(tf_md_cell "$exp")"
  printf '\n'
} | tf_summary
