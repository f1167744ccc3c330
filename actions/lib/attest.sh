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

# An image, or files (subject-path, a path or glob): each file is attested
# with `trustfabric attest --file`, its statement stored next to it.
files=()
if [ -n "${TF_SUBJECT_PATH:-}" ]; then
  if [ -n "${TF_IMAGE:-}" ]; then
    tf_error "trustfabric attest" "give the image input or subject-path, not both"
    exit 2
  fi
  shopt -s nullglob globstar
  # shellcheck disable=SC2206 # subject-path is a glob, expanded here on purpose
  files=($TF_SUBJECT_PATH)
  shopt -u nullglob globstar
  if [ "${#files[@]}" -eq 0 ]; then
    tf_error "trustfabric attest" "subject-path \"$TF_SUBJECT_PATH\" matches no file"
    exit 2
  fi
  for f in "${files[@]}"; do
    if [ ! -f "$f" ]; then
      tf_error "trustfabric attest" "subject-path matches \"$f\", which is not a file"
      exit 2
    fi
  done
  ref="${files[*]}"
else
  tf_image_ref "${TF_IMAGE:-}" "${TF_DIGEST:-}"
  ref="$TF_REF"
fi
for pair in "ts-url:${TF_TS_URL:-}" "identity-server:${TF_IDENTITY_SERVER:-}"; do
  if [ -z "${pair#*:}" ]; then
    tf_error "trustfabric attest" "the ${pair%%:*} input is required"
    exit 2
  fi
done
if [ "${#files[@]}" -eq 0 ]; then
  tf_registry_login "${TF_IMAGE:-}" "${TF_REGISTRY:-}" "${TF_REGISTRY_USERNAME:-}" "${TF_REGISTRY_PASSWORD:-}" "$work"
fi
if [ -n "${TF_PREDICATE:-}" ] && [ ! -f "$TF_PREDICATE" ]; then
  tf_error "trustfabric attest" "predicate file \"$TF_PREDICATE\" does not exist"
  exit 2
fi

# attest_one SUBJECT_ARGS...: one `trustfabric attest` run; sets result and errlog.
attest_one() {
  n=1
  while [ -e "$work/attest-$n.json" ]; do n=$((n + 1)); done
  result="$work/attest-$n.json"
  errlog="$work/attest-$n.log"
  local args=(attest "$@" --ts "$TF_TS_URL" --identity-server "$TF_IDENTITY_SERVER" --output json)
  if [ "$1" != --file ]; then
    args+=(--statement-out "$work/attest-$n.cose")
  fi
  if [ -n "${TF_AUDIENCE:-}" ]; then
    args+=(--audience "$TF_AUDIENCE")
  fi
  if [ -n "${TF_PREDICATE:-}" ]; then
    args+=(--predicate "$TF_PREDICATE")
  fi
  echo "trustfabric ${args[*]}"
  local rc=0
  # The wrapper owns the step outputs and summary: the CLI gets neither file.
  env -u GITHUB_OUTPUT -u GITHUB_STEP_SUMMARY "$cli" "${args[@]}" >"$result" 2> >(tee "$errlog" >&2) || rc=$?
  wait
  return "$rc"
}

rc=0
statements=()
if [ "${#files[@]}" -eq 0 ]; then
  attest_one "$ref" || rc=$?
else
  for f in "${files[@]}"; do
    attest_one --file "$f" || rc=$?
    [ "$rc" -ne 0 ] && break
    statements+=("$(tf_json_get "$result" statementPath)")
  done
fi
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
  if [ "${#files[@]}" -gt 0 ]; then
    for i in "${!files[@]}"; do
      printf '| File | `%s` → `%s` |\n' "$(tf_md_cell "${files[$i]}")" "$(tf_md_cell "${statements[$i]}")"
    done
  else
    printf '| Image | `%s` |\n' "$(tf_md_cell "${subject:-$ref}")"
  fi
  [ -n "$identity" ] && printf '| Workload identity | `%s` |\n' "$(tf_md_cell "$identity")"
  printf '| Transparency service | %s |\n' "$(tf_md_cell "$TF_TS_URL")"
  printf '| Entry id | `%s` |\n' "$(tf_md_cell "$entry")"
  [ -n "$index" ] && printf '| Log index | %s%s |\n' "$(tf_md_cell "$index")" "${size:+ (tree size $(tf_md_cell "$size"))}"
  [ -n "$referrer" ] && printf '| Referrer | `%s` |\n' "$(tf_md_cell "$referrer")"
  printf '\n'
} | tf_summary
