#!/usr/bin/env bash
# Step script of actions/verify, the deploy gate: `trustfabric verify` with a
# policy. Exit 0 of the CLI = allow, 1 = deny (one reason per line on stderr,
# each turned into an error annotation), 2 = usage or input error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

tf_require_cli
cli="$TRUSTFABRIC_CLI"
work="$(tf_workdir)"
tf_image_ref "${TF_IMAGE:-}" "${TF_DIGEST:-}"
ref="$TF_REF"
if [ -z "${TF_POLICY:-}" ] || [ ! -f "$TF_POLICY" ]; then
  tf_error "trustfabric verify" "policy file \"${TF_POLICY:-}\" does not exist: give the path of a verification policy (see examples/policy/verify.yaml)"
  exit 2
fi
tf_registry_login "${TF_IMAGE:-}" "${TF_REGISTRY:-}" "${TF_REGISTRY_USERNAME:-}" "${TF_REGISTRY_PASSWORD:-}" "$work"

args=(verify "$ref" --policy "$TF_POLICY" --output json)
case "${TF_OFFLINE:-false}" in
true) args+=(--offline) ;;
false | "") ;;
*)
  tf_error "trustfabric verify" "offline must be true or false, got \"$TF_OFFLINE\""
  exit 2
  ;;
esac

n=1
while [ -e "$work/verify-$n.json" ]; do n=$((n + 1)); done
result="$work/verify-$n.json"
errlog="$work/verify-$n.log"

echo "trustfabric ${args[*]}"
rc=0
env -u GITHUB_OUTPUT -u GITHUB_STEP_SUMMARY "$cli" "${args[@]}" >"$result" 2> >(tee "$errlog" >&2) || rc=$?
wait
tf_output result-path "$result"

case "$rc" in
0)
  tf_output decision allow
  entry="$(tf_json_get "$result" satisfiedBy.entryID)"
  issuer="$(tf_json_get "$result" satisfiedBy.issuer)"
  {
    printf '### Trustfabric gate: allowed\n\n`%s` satisfies `%s`.\n\n' "$(tf_md_cell "$ref")" "$(tf_md_cell "$TF_POLICY")"
    if [ -n "$entry$issuer" ]; then
      printf '| | |\n|---|---|\n'
      [ -n "$issuer" ] && printf '| Signed by | `%s` |\n' "$(tf_md_cell "$issuer")"
      [ -n "$entry" ] && printf '| Entry id | `%s` |\n' "$(tf_md_cell "$entry")"
      printf '\n'
    fi
  } | tf_summary
  exit 0
  ;;
1)
  tf_output decision deny
  # The CLI prints one "deny: REASON" line per reason; fall back to every
  # line when it printed none in that form.
  mapfile -t reasons < <(sed -n 's/^deny: //p' "$errlog")
  [ "${#reasons[@]}" -eq 0 ] && mapfile -t reasons < <(tf_log_lines "$errlog")
  [ "${#reasons[@]}" -eq 0 ] && reasons=("denied without a reason on stderr")
  # Errors when the deny fails the step, warnings when it does not.
  annotate=tf_error
  [ "${TF_FAIL_ON_DENY:-true}" = "false" ] && annotate=tf_warning
  i=0
  for r in "${reasons[@]}"; do
    i=$((i + 1))
    # The runner shows at most 10 annotations of a kind per step.
    if [ "$i" -le 9 ]; then
      "$annotate" "trustfabric gate: denied" "$r"
    elif [ "$i" -eq 10 ]; then
      "$annotate" "trustfabric gate: denied" "$((${#reasons[@]} - 9)) more reasons: see the job summary"
    fi
  done
  {
    printf '### Trustfabric gate: denied\n\n`%s` does not satisfy `%s`:\n\n' "$(tf_md_cell "$ref")" "$(tf_md_cell "$TF_POLICY")"
    for r in "${reasons[@]:0:200}"; do printf -- '- %s\n' "$(tf_md_cell "$r")"; done
    printf '\n'
  } | tf_summary
  if [ "${TF_FAIL_ON_DENY:-true}" = "false" ]; then
    echo "trustfabric: denied; not failing the step because fail-on-deny is false"
    exit 0
  fi
  exit 1
  ;;
*)
  tf_output decision error
  reason="$(tf_log_lines "$errlog" | tail -n 5)"
  tf_error "trustfabric verify failed (exit $rc)" "${reason:-no message}"
  {
    printf '### Trustfabric gate: error\n\n`%s` could not be checked (exit %d):\n\n```\n' "$(tf_md_cell "$ref")" "$rc"
    tf_log_lines "$errlog" | tail -n 40
    printf '```\n'
  } | tf_summary
  exit "$rc"
  ;;
esac
