# shellcheck shell=bash
# Helpers shared by the Trustfabric composite actions (sourced, never run).
#
# Every input reaches these scripts through an environment variable set in the
# step's `env:` block; nothing here is ever expanded by the Actions expression
# engine, so no input can inject shell code.

set -euo pipefail

# tf_workdir prints (and creates) the per-job scratch directory.
tf_workdir() {
  local dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/trustfabric"
  mkdir -p "$dir"
  chmod 700 "$dir"
  printf '%s\n' "$dir"
}

# tf_escape_data escapes a workflow-command message (% CR LF).
tf_escape_data() {
  local s="$1"
  s="${s//'%'/'%25'}"
  s="${s//$'\r'/'%0D'}"
  s="${s//$'\n'/'%0A'}"
  printf '%s' "$s"
}

# tf_escape_property escapes a workflow-command property (also : and ,).
tf_escape_property() {
  local s
  s="$(tf_escape_data "$1")"
  s="${s//':'/'%3A'}"
  s="${s//','/'%2C'}"
  printf '%s' "$s"
}

tf_error() { printf '::error title=%s::%s\n' "$(tf_escape_property "$1")" "$(tf_escape_data "$2")"; }
tf_warning() { printf '::warning title=%s::%s\n' "$(tf_escape_property "$1")" "$(tf_escape_data "$2")"; }
tf_notice() { printf '::notice title=%s::%s\n' "$(tf_escape_property "$1")" "$(tf_escape_data "$2")"; }

# tf_mask registers every line of a secret with the runner's log masker before
# anything can print it.
tf_mask() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] && printf '::add-mask::%s\n' "$line"
  done <<<"$1"
}

# tf_output NAME VALUE appends a step output. Values are single-line by
# construction (digests, ids, paths); a value with a newline is refused rather
# than allowed to forge a second output.
tf_output() {
  local name="$1" value="$2"
  case "$value" in
  *$'\n'* | *$'\r'*)
    echo "trustfabric: refusing to write multi-line output $name" >&2
    return 1
    ;;
  esac
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$name" "$value" >>"$GITHUB_OUTPUT"
  else
    printf '%s=%s\n' "$name" "$value"
  fi
}

# tf_summary appends Markdown (from stdin) to the job summary when there is one.
tf_summary() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat >>"$GITHUB_STEP_SUMMARY"
  else
    cat >/dev/null
  fi
}

# tf_log_lines FILE prints the non-empty lines of a CLI log except workflow
# commands (::add-mask::SECRET must never be copied into a summary or an
# annotation).
tf_log_lines() {
  grep -v -e '^[[:space:]]*$' -e '^::' "$1" || true
}

# tf_md_cell makes a value safe inside a Markdown table cell.
tf_md_cell() {
  local s="$1"
  s="${s//'|'/'\|'}"
  s="${s//$'\n'/ }"
  s="${s//'<'/'&lt;'}"
  printf '%s' "$s"
}

# tf_json_get FILE KEY... prints the first non-empty string or number found at
# any of the given keys (dotted paths such as satisfiedBy.entryID) of the CLI's
# --output json.
tf_json_get() {
  local file="$1"
  shift
  if command -v jq >/dev/null 2>&1; then
    local key v
    for key in "$@"; do
      v="$(jq -r --arg k "$key" 'try getpath($k | split(".")) catch null | if type == "string" or type == "number" then tostring else empty end' "$file" 2>/dev/null || true)"
      if [ -n "$v" ]; then
        printf '%s' "$v"
        return 0
      fi
    done
    return 0
  fi
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$file" "$@" <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as f:
        doc = json.load(f)
except Exception:
    sys.exit(0)
for key in sys.argv[2:]:
    v = doc
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
        continue
    if str(v):
        sys.stdout.write(str(v))
        break
PY
    return 0
  fi
  echo "trustfabric: neither jq nor python3 is available to read the CLI's JSON output" >&2
  return 1
}

# tf_image_ref joins IMAGE and an optional DIGEST input into IMAGE@DIGEST and
# stores it in TF_REF (not printed: a command substitution would swallow the
# error annotations).
tf_image_ref() {
  local image="$1" digest="$2"
  # shellcheck disable=SC2034 # read by the caller
  TF_REF=""
  if [ -z "$image" ]; then
    tf_error "trustfabric" "the image input is empty: give the image name, e.g. ghcr.io/acme/app"
    return 2
  fi
  if [ -z "$digest" ]; then
    TF_REF="$image"
    return 0
  fi
  case "$digest" in
  sha256:* | sha384:* | sha512:*) ;;
  *)
    tf_error "trustfabric" "the digest input \"$digest\" is not a digest: use the form sha256:<hex>, e.g. steps.build.outputs.digest"
    return 2
    ;;
  esac
  case "$image" in
  *@*)
    tf_error "trustfabric" "the image input already contains a digest; leave the digest input empty or drop @… from the image"
    return 2
    ;;
  esac
  # Drop a tag: IMAGE:TAG@DIGEST would be accepted by registries but the digest
  # alone names what we attest.
  local last="${image##*/}"
  if [[ "$last" == *:* ]]; then
    image="${image%:*}"
  fi
  # shellcheck disable=SC2034 # read by the caller
  TF_REF="$image@$digest"
}

# tf_registry_of prints the registry host of an image reference.
tf_registry_of() {
  local first="${1%%/*}"
  if [[ "$1" == */* ]] && { [[ "$first" == *.* ]] || [[ "$first" == *:* ]] || [ "$first" = localhost ]; }; then
    printf '%s' "$first"
  else
    printf 'index.docker.io'
  fi
}

# tf_registry_login writes a private Docker config for the CLI (only for the
# CLI's process: it never touches ~/.docker) when a password is given.
tf_registry_login() {
  local image="$1" registry="$2" user="$3" password="$4" dir="$5"
  [ -z "$password" ] && return 0
  tf_mask "$password"
  [ -z "$registry" ] && registry="$(tf_registry_of "$image")"
  if [ -z "$user" ]; then
    tf_error "trustfabric" "registry-password is set but registry-username is empty"
    return 2
  fi
  local cfg="$dir/docker"
  mkdir -p "$cfg"
  chmod 700 "$cfg"
  local auth
  auth="$(printf '%s:%s' "$user" "$password" | base64 | tr -d '\n')"
  tf_mask "$auth"
  umask 077
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry" "$auth" >"$cfg/config.json"
  export DOCKER_CONFIG="$cfg"
}

# tf_check_identity_available stops early, with a clear message, when a GitHub
# job cannot mint an OIDC token. MODE is fail or skip. Returns 0 when the token
# is available, 3 when the caller should skip, and exits 1 on fail.
tf_check_identity_available() {
  local mode="$1" provider="${2:-auto}"
  [ "${GITHUB_ACTIONS:-}" = "true" ] || return 0
  case "$provider" in auto | github) ;; *) return 0 ;; esac
  if [ -n "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] && [ -n "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]; then
    return 0
  fi
  local why="this job cannot request a GitHub OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set)."
  local fix="Grant it with 'permissions: id-token: write' on the job."
  case "${GITHUB_EVENT_NAME:-}" in
  pull_request | pull_request_review | pull_request_review_comment)
    why="this pull_request run gets no OIDC token: GitHub never gives one to pull requests from forks, and not without 'permissions: id-token: write'."
    fix="Attest on push or release instead, or set on-missing-identity: skip for pull requests."
    ;;
  esac
  if [ "$mode" = "skip" ]; then
    tf_notice "trustfabric: skipped" "$why Skipping as on-missing-identity is skip."
    printf '### Trustfabric: skipped\n\n%s\n' "$why" | tf_summary
    return 3
  fi
  tf_error "trustfabric: no identity" "$why $fix"
  printf '### Trustfabric: no identity\n\n%s\n\n%s\n' "$why" "$fix" | tf_summary
  exit 1
}

# tf_require_cli checks the CLI path installed by install.sh (TRUSTFABRIC_CLI).
tf_require_cli() {
  if [ -z "${TRUSTFABRIC_CLI:-}" ] || [ ! -x "$TRUSTFABRIC_CLI" ]; then
    tf_error "trustfabric" "the CLI was not installed by the previous step (TRUSTFABRIC_CLI=${TRUSTFABRIC_CLI:-unset})"
    exit 1
  fi
}
