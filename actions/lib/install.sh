#!/usr/bin/env bash
# Makes the trustfabric CLI available to a composite action, in this order:
#   1. TF_CLI_PATH (the cli-path input): a binary already on the runner;
#   2. a release binary for this OS/arch, downloaded from the action's own
#      repository and verified against actions/lib/checksums.txt (committed in
#      the repository at the same ref as this script); the version is
#      TF_CLI_VERSION (cli-version input), or the action's ref when it is a
#      release tag vX.Y.Z, or, when the ref is a commit SHA, the release tag
#      vX.Y.Z that points at that commit (GET $GITHUB_API_URL/repos/OWNER/REPO/tags,
#      the newest 100 tags; authenticated with TF_GITHUB_TOKEN when set).
#      With TF_CLI_TS_KEY (cli-ts-key input: a pinned Transparency Service
#      public key, JWK/JWK Set/COSE_Key/PEM, inline or a file), the release's
#      receipt is verified too: the transparent statement published next to
#      the binary (ASSET.scitt.cose, from the release workflow's own attest
#      step) must carry a receipt that verifies under that key, checked by the
#      checksum-verified binary (`trustfabric receipt verify --output json`),
#      and be about exactly this binary (subject sha256:<its digest>); a
#      missing or bad receipt fails the install;
#   3. otherwise a build from the action's source ($GITHUB_ACTION_PATH) with the
#      runner's Go toolchain (a branch ref, a SHA with no release tag, or
#      `uses: ./`); with TF_CLI_TS_KEY set that is an error, as there is no
#      receipt to check.
# Writes the outputs path, version and source, and with TF_ADD_TO_PATH=true
# puts the binary's directory on $GITHUB_PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

root="$(cd "$here/../.." && pwd)"
work="$(tf_workdir)"
bindir="$work/bin"
mkdir -p "$bindir"

cli_path="${TF_CLI_PATH:-}"
want="${TF_CLI_VERSION:-}"
action_ref="${TF_ACTION_REF:-}"
action_repo="${TF_ACTION_REPOSITORY:-}"
[ -z "$action_repo" ] && action_repo="trustfabric/trustfabric"
server="${GITHUB_SERVER_URL:-https://github.com}"
api="${GITHUB_API_URL:-https://api.github.com}"
ts_key="${TF_CLI_TS_KEY:-}"

finish() {
  local path="$1" version="$2" source="$3"
  if ! "$path" --version >/dev/null 2>&1; then
    tf_error "trustfabric setup" "$path does not run (\"$path --version\" failed): is it a trustfabric binary for $(uname -s)/$(uname -m)?"
    exit 1
  fi
  tf_output path "$path"
  tf_output version "$version"
  tf_output source "$source"
  if [ "${TF_ADD_TO_PATH:-false}" = "true" ] && [ -n "${GITHUB_PATH:-}" ]; then
    dirname "$path" >>"$GITHUB_PATH"
  fi
  echo "trustfabric: using $path ($source, $version)"
  exit 0
}

# 1. An explicit binary.
if [ -n "$cli_path" ]; then
  if [ ! -f "$cli_path" ] || [ ! -x "$cli_path" ]; then
    tf_error "trustfabric setup" "cli-path \"$cli_path\" is not an executable file"
    exit 1
  fi
  cli_path="$(cd "$(dirname "$cli_path")" && pwd)/$(basename "$cli_path")"
  [ -n "$ts_key" ] && tf_notice "trustfabric setup" "cli-ts-key is not checked for cli-path: the binary is the one you gave"
  finish "$cli_path" "$("$cli_path" --version 2>/dev/null | awk '{print $NF}' || true)" path
fi

# 2. A verified release binary.
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) arch="$(uname -m)" ;;
esac
case "$os" in mingw* | msys* | cygwin*) os=windows ;; esac
# Releases are built for these platforms only (devtools/release).
supported=false
case "$os/$arch" in linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64 | windows/amd64 | windows/arm64) supported=true ;; esac

# The pinned Transparency Service key, as a file.
key_file=""
if [ -n "$ts_key" ]; then
  case "$ts_key" in
  http://* | https://*)
    tf_error "trustfabric setup" "cli-ts-key must be the Transparency Service's public key (inline, or a file), not a URL: a key fetched when the job runs is not pinned"
    exit 1
    ;;
  "{"* | "-----BEGIN"*)
    key_file="$work/cli-ts-key"
    printf '%s\n' "$ts_key" >"$key_file"
    ;;
  *)
    if [ ! -f "$ts_key" ]; then
      tf_error "trustfabric setup" "cli-ts-key \"$ts_key\" is neither a key nor a readable file"
      exit 1
    fi
    key_file="$ts_key"
    ;;
  esac
fi

# release_for_commit SHA prints the release tag vX.Y.Z that points at SHA,
# from the repository's tag listing (GitHub's GET /repos/OWNER/REPO/tags:
# [{"name": …, "commit": {"sha": …}}, …]), or nothing.
release_for_commit() {
  local sha="$1" json hdr="$work/api-headers"
  # The token goes in a 0600 header file, not on curl's command line.
  (umask 077 && printf 'Accept: application/vnd.github+json\n' >"$hdr")
  [ -n "${TF_GITHUB_TOKEN:-}" ] && printf 'Authorization: Bearer %s\n' "$TF_GITHUB_TOKEN" >>"$hdr"
  json="$(curl -fsSL --retry 3 --proto '=https' --max-filesize 2000000 -H "@$hdr" \
    "$api/repos/$action_repo/tags?per_page=100" 2>/dev/null)" || { rm -f "$hdr"; return 0; }
  rm -f "$hdr"
  # Whitespace never occurs in tag names or SHAs: drop it, then match one tag
  # object's name and commit (no braces in between).
  tr -d ' \t\r\n' <<<"$json" |
    grep -oE '"name":"v[0-9]+\.[0-9]+\.[0-9]+"[^{}]*"commit":\{"sha":"'"$sha"'"' |
    head -n1 | sed -E 's/^"name":"([^"]+)".*/\1/' || true
}

# verify_receipt BIN SHA256: the release's transparent statement for $asset
# carries a receipt that verifies under the pinned key and is about exactly
# the binary BIN (already checksum-verified); the statement is kept next to
# the installed binary as $dest.scitt.cose.
verify_receipt() {
  local bin="$1" sum="$2" stmt="$dest.scitt.cose" out subject url tmp
  if [ ! -s "$stmt" ] || [ "$(cat "$stmt.sha256" 2>/dev/null || true)" != "$sum" ]; then
    url="$server/$action_repo/releases/download/$version/$asset.scitt.cose"
    echo "trustfabric: downloading the release's receipt $url"
    tmp="$(mktemp "$bindir/$version/receipt.XXXXXX")"
    if ! curl -fsSL --retry 3 --proto '=https' --max-filesize 10000000 -o "$tmp" "$url"; then
      rm -f "$tmp"
      tf_error "trustfabric setup" "cli-ts-key is set but the release has no receipt for $asset ($url could not be downloaded); refusing to install it"
      return 1
    fi
    mv "$tmp" "$stmt"
  fi
  if ! out="$("$bin" receipt verify "$stmt" --service-key "$key_file" --output json 2>"$work/receipt.err")"; then
    rm -f "$stmt" "$stmt.sha256"
    tf_error "trustfabric setup" "the receipt of $asset does not verify under cli-ts-key: $(tail -n1 "$work/receipt.err")"
    return 1
  fi
  subject="$(tr -d ' \t\r\n' <<<"$out" | grep -oE '"subject":"[^"]*"' | head -n1 | cut -d'"' -f4 || true)"
  if [ "$subject" != "sha256:$sum" ]; then
    rm -f "$stmt" "$stmt.sha256"
    tf_error "trustfabric setup" "the receipted statement is about \"$subject\", not $asset (sha256:$sum); refusing to install it"
    return 1
  fi
  printf '%s' "$sum" >"$stmt.sha256"
  echo "trustfabric: the release's receipt verifies under cli-ts-key (statement about sha256:$sum)"
}

version="$want"
if [ -z "$version" ] && [[ "$action_ref" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  version="$action_ref"
fi
if [ -z "$version" ] && [[ "$action_ref" =~ ^[0-9a-fA-F]{40}$ ]]; then
  sha="$(tr '[:upper:]' '[:lower:]' <<<"$action_ref")"
  version="$(release_for_commit "$sha")"
  if [ -n "$version" ]; then
    echo "trustfabric: commit $sha is release $version"
  else
    echo "trustfabric: commit $sha is no release tag (vX.Y.Z) of $action_repo"
  fi
fi

if [ -n "$version" ] && [ "$supported" != true ]; then
  if [ -n "$want" ]; then
    tf_error "trustfabric setup" "no release binary for $os/$arch (releases: linux, darwin, windows on amd64, arm64); set cli-path to a binary built for this runner"
    exit 1
  fi
  echo "trustfabric: no release binary for $os/$arch; building from source"
  version=""
fi

if [ -n "$version" ]; then
  asset="trustfabric_${version}_${os}_${arch}"
  [ "$os" = windows ] && asset="$asset.exe"
  sum="$(awk -v a="$asset" '$1 !~ /^#/ && $2 == a {print $1}' "$here/checksums.txt" | head -n1)"
  if [ -n "$sum" ]; then
    mkdir -p "$bindir/$version"
    dest="$bindir/$version/trustfabric"
    if [ -x "$dest" ] && echo "$sum  $dest" | sha256sum -c --status 2>/dev/null; then
      if [ -n "$key_file" ]; then verify_receipt "$dest" "$sum" || exit 1; fi
    else
      url="$server/$action_repo/releases/download/$version/$asset"
      echo "trustfabric: downloading $url"
      tmp="$(mktemp "$bindir/$version/download.XXXXXX")"
      if ! curl -fsSL --retry 3 --proto '=https' -o "$tmp" "$url"; then
        rm -f "$tmp"
        tf_error "trustfabric setup" "could not download $url; set cli-path to a preinstalled binary on runners without access to $server"
        exit 1
      fi
      got="$(sha256sum "$tmp" | awk '{print $1}')"
      if [ "$got" != "$sum" ]; then
        rm -f "$tmp"
        tf_error "trustfabric setup" "checksum mismatch for $asset: got $got, want $sum (actions/lib/checksums.txt); refusing to run it"
        exit 1
      fi
      chmod 755 "$tmp"
      if [ -n "$key_file" ] && ! verify_receipt "$tmp" "$sum"; then
        rm -f "$tmp"
        exit 1
      fi
      mv "$tmp" "$dest"
    fi
    finish "$dest" "$version" release
  fi
  if [ -n "$want" ]; then
    tf_error "trustfabric setup" "cli-version $want has no checksum for $os/$arch in actions/lib/checksums.txt at this action's ref, so it cannot be verified; use the action at tag $want, or cli-path"
    exit 1
  fi
  echo "trustfabric: no release checksum for $asset; building from source"
fi

# 3. Build from the action's own source.
if [ -n "$key_file" ]; then
  tf_error "trustfabric setup" "cli-ts-key is set but ${action_ref:-this ref} installs no release (it would build from source), so there is no receipt to verify; pin the action to a release tag or its commit"
  exit 1
fi
if ! command -v go >/dev/null 2>&1; then
  tf_error "trustfabric setup" "no release binary for this ref and no Go toolchain to build one: add actions/setup-go before this step (go-version-file: go.mod of the action), pin the action to a release tag, or set cli-path"
  exit 1
fi
if [ ! -f "$root/go.mod" ] || [ ! -d "$root/cmd/trustfabric" ]; then
  tf_error "trustfabric setup" "$root does not hold the trustfabric source (go.mod, cmd/trustfabric)"
  exit 1
fi
src_version="${action_ref:-source}"
mkdir -p "$bindir/source"
dest="$bindir/source/trustfabric"
stamp="$root@$src_version"
if [ -x "$dest" ] && [ "$(cat "$dest.stamp" 2>/dev/null || true)" = "$stamp" ]; then
  finish "$dest" "$src_version" source
fi
echo "trustfabric: building the CLI from $root with $(go version)"
(
  cd "$root"
  CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go build -trimpath -ldflags "-X main.version=$src_version" -o "$dest.tmp" ./cmd/trustfabric
)
mv "$dest.tmp" "$dest"
printf '%s' "$stamp" >"$dest.stamp"
finish "$dest" "$src_version" source
