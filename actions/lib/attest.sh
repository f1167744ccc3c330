#!/usr/bin/env bash
# Step script of the root action (attest): identity → provenance → sign →
# register → attach, all inside one `trustfabric attest` process so the
# workload's private key never touches disk. Inputs arrive as TF_* variables.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

tf_require_cli
cli="$TRUSTFABRIC_CLI"
work="$(tf_workdir)"

rc=0
tf_check_identity_available "${TF_ON_MISSING_IDENTITY:-fail}" github || rc=$?
if [ "$rc" -eq 3 ]; then
  tf_output skipped true
  exit 0
fi

tf_image_ref "${TF_IMAGE:-}" "${TF_DIGEST:-}"
ref="$TF_REF"
for pair in "ts-url:${TF_TS_URL:-}" "identity-server:${TF_IDENTITY_SERVER:-}"; do
  if [ -z "${pair#*:}" ]; then
    tf_error "trustfabric attest" "the ${pair%%:*} input is required"
    exit 2
  fi
done
tf_registry_login "${TF_IMAGE:-}" "${TF_REGISTRY:-}" "${TF_REGISTRY_USERNAME:-}" "${TF_REGISTRY_PASSWORD:-}" "$work"

n=1
while [ -e "$work/attest-$n.json" ]; do n=$((n + 1)); done
result="$work/attest-$n.json"
errlog="$work/attest-$n.log"
args=(attest "$ref" --ts "$TF_TS_URL" --identity-server "$TF_IDENTITY_SERVER" --output json
  --statement-out "$work/attest-$n.cose")
if [ -n "${TF_AUDIENCE:-}" ]; then
  args+=(--audience "$TF_AUDIENCE")
fi
if [ -n "${TF_PREDICATE:-}" ]; then
  if [ ! -f "$TF_PREDICATE" ]; then
    tf_error "trustfabric attest" "predicate file \"$TF_PREDICATE\" does not exist"
    exit 2
  fi
  args+=(--predicate "$TF_PREDICATE")
fi

echo "trustfabric ${args[*]}"
rc=0
# The wrapper owns the step outputs and summary: the CLI gets neither file.
env -u GITHUB_OUTPUT -u GITHUB_STEP_SUMMARY "$cli" "${args[@]}" >"$result" 2> >(tee "$errlog" >&2) || rc=$?
wait
if [ "$rc" -ne 0 ]; then
  # Workflow commands (::add-mask::TOKEN) must never reach the summary.
  reason="$(tf_log_lines "$errlog" | tail -n 5)"
  tf_error "trustfabric attest failed (exit $rc)" "${reason:-no message}"
  {
    printf '### Trustfabric attest failed\n\n`%s` exited %d.\n\n```\n' "$(tf_md_cell "$ref")" "$rc"
    tf_log_lines "$errlog" | tail -n 40
    printf '```\n'
  } | tf_summary
  exit "$rc"
fi

entry="$(tf_json_get "$result" entryId)"
index="$(tf_json_get "$result" logIndex)"
size="$(tf_json_get "$result" treeSize)"
referrer="$(tf_json_get "$result" referrerDigest)"
statement="$(tf_json_get "$result" statementPath)"
subject="$(tf_json_get "$result" subject image)"
identity="$(tf_json_get "$result" workloadId)"
if [ -z "$entry" ]; then
  tf_error "trustfabric attest" "the CLI's JSON output ($result) has no entry id"
  exit 1
fi

tf_output skipped false
tf_output entry-id "$entry"
tf_output log-index "$index"
tf_output referrer-digest "$referrer"
tf_output statement-path "$statement"
tf_output result-path "$result"

{
  printf '### Trustfabric: attested\n\n'
  printf '| | |\n|---|---|\n'
  printf '| Image | `%s` |\n' "$(tf_md_cell "${subject:-$ref}")"
  [ -n "$identity" ] && printf '| Workload identity | `%s` |\n' "$(tf_md_cell "$identity")"
  printf '| Transparency service | %s |\n' "$(tf_md_cell "$TF_TS_URL")"
  printf '| Entry id | `%s` |\n' "$(tf_md_cell "$entry")"
  [ -n "$index" ] && printf '| Log index | %s%s |\n' "$(tf_md_cell "$index")" "${size:+ (tree size $(tf_md_cell "$size"))}"
  [ -n "$referrer" ] && printf '| Referrer | `%s` |\n' "$(tf_md_cell "$referrer")"
  printf '\n'
} | tf_summary
