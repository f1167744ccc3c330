#!/usr/bin/env bash
# Step script of actions/audit: `trustfabric audit` over the given paths. It
# writes a SARIF file for code scanning and prints the text report; it never
# fails the step itself (so that the SARIF is uploaded first): the result
# output says pass or fail, and audit-enforce.sh fails the job on fail.
# Exit 2 of the CLI (bad input) fails the step at once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

tf_require_cli
cli="$TRUSTFABRIC_CLI"
work="$(tf_workdir)"
sarif="$work/audit.sarif"

args=()
while IFS= read -r p; do
  [ -n "$p" ] && args+=("$p")
done <<<"$(printf '%s\n' "${TF_PATHS:-.}" | tr ' ' '\n')"
while IFS= read -r o; do
  [ -n "$o" ] && args+=(--allow-ref-pin "$o")
done <<<"$(printf '%s\n' "${TF_ALLOW_REF_PIN:-}" | tr ' ' '\n')"
case "${TF_FAIL_ON:-warning}" in
none | note | warning | error) ;;
*)
  tf_error "trustfabric audit" "fail-on must be none, note, warning or error, got \"$TF_FAIL_ON\""
  exit 2
  ;;
esac

rc=0
"$cli" audit "${args[@]}" --format sarif --fail-on none >"$sarif" || rc=$?
if [ "$rc" -ne 0 ]; then
  tf_error "trustfabric audit" "the audit could not read every file (exit $rc)"
  exit 2
fi
tf_output sarif-path "$sarif"
upload="${TF_UPLOAD:-true}"
case "$upload" in
true | false) tf_output upload "$upload" ;;
*)
  tf_error "trustfabric audit" "upload must be true or false, got \"$upload\""
  exit 2
  ;;
esac

report="$work/audit.txt"
rc=0
"$cli" audit "${args[@]}" --format text --fail-on "${TF_FAIL_ON:-warning}" >"$report" 2>&1 || rc=$?
cat "$report"
summary="$(grep -E '^[0-9]+ files, [0-9]+ findings: ' "$report" | tail -n 1 || true)"
findings="$(printf '%s\n' "$summary" | awk '/ findings: / {print $3; exit}')"
tf_output findings "${findings:-0}"
case "$rc" in
0) tf_output result pass ;;
1) tf_output result fail ;;
*)
  tf_error "trustfabric audit" "the audit failed (exit $rc)"
  exit 2
  ;;
esac
{
  printf '### Trustfabric audit\n\n%s\n' "$(tf_md_cell "$summary")"
} | tf_summary
