#!/usr/bin/env bash
# Container image, as the release builds it: devtools/image makes a multi-arch
# OCI index (linux/amd64, linux/arm64) from the release binaries without a
# Docker daemon and pushes it to a local registry (the olareg of
# devtools/selftestenv); then the binary read back from the pushed layers runs
# `--version`, and the image is attested with `trustfabric attest` (identity
# from the fake GitHub issuer, the Transparency Service on loopback) and
# verified with `trustfabric verify` against the environment's policy.
# The shell variant (the GitLab components' default image) is built with
# Debian's static busybox (apt-get download busybox-static, cached under
# ~/.cache/trustfabric/busybox) for this machine's architecture, pushed, its
# file system extracted, and the verify component's script run by its busybox
# sh with its CLI (internal/citest TestVerifyComponentInShellImage): allow for
# the attested image, deny for an unattested one; the Tekton verify Task's and
# StepAction's exec-form args are run by the image's CLI the same way
# (TestTektonVerifyWithImageCLI). Last, the release's CI
# manifests are pinned to the pushed digests (devtools/release --pin-image),
# as the release workflow does.
# Cost: two cross builds (cached by Go's build cache) and a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

version=v0.0.0-dryrun
go run ./devtools/release --version "$version" --out "$work/dist" --platforms linux/amd64,linux/arm64 >/dev/null
go build -o "$work/bin/" ./devtools/selftestenv ./devtools/image ./cmd/trustfabric
tf="$work/bin/trustfabric"

"$work/bin/selftestenv" -provider github -repository trustfabric/trustfabric -dir "$work/env" \
  -env-file "$work/env.env" >"$work/env.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/env.env" ] && break; sleep 0.1; done
[ -s "$work/env.env" ] || { cat "$work/env.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091 # written above
. "$work/env.env"
set +a

arch="$(go env GOARCH)"
bb="$HOME/.cache/trustfabric/busybox/$arch"
if [ ! -x "$bb/bin/busybox" ]; then
  mkdir -p "$bb"
  (cd "$bb" && apt-get download "busybox-static:$(dpkg --print-architecture)" >/dev/null 2>&1 &&
    dpkg-deb -x busybox-static_*.deb . && rm -f busybox-static_*.deb)
fi
[ -x "$bb/bin/busybox" ] || { echo "no static busybox for the shell variant (apt-get download busybox-static failed)"; exit 1; }
refs="$("$work/bin/image" --repo "$TF_SELFTEST_REGISTRY/trustfabric/trustfabric:$version" --insecure \
  --version "$version" --revision "$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --bin "linux/amd64=$work/dist/trustfabric_${version}_linux_amd64" \
  --bin "linux/arm64=$work/dist/trustfabric_${version}_linux_arm64" \
  --shell "linux/$arch=$bb/bin/busybox" --shell-repo "$TF_SELFTEST_REGISTRY/trustfabric/trustfabric:$version-shell")"
ref="$(sed -n 1p <<<"$refs")"
shell_ref="$(sed -n 2p <<<"$refs")"
echo "pushed $ref and $shell_ref"

host="linux/$(go env GOARCH)"
"$work/bin/image" --repo "$ref" --insecure --extract "$host" --out "$work/from-image"
got="$("$work/from-image" --version)"
[ "$got" = "trustfabric $version" ] || {
  echo "the image's binary says \"$got\", not trustfabric $version"
  exit 1
}

# A GitHub Actions job as the fake issuer's token describes it.
export GITHUB_ACTIONS=true GITHUB_REPOSITORY=trustfabric/trustfabric GITHUB_REPOSITORY_ID=89012345 \
  GITHUB_REPOSITORY_OWNER=trustfabric GITHUB_SERVER_URL=https://github.com GITHUB_SHA=0000000000000000000000000000000000000000 \
  GITHUB_REF=refs/heads/main GITHUB_EVENT_NAME=push GITHUB_RUN_ID=1 GITHUB_RUN_ATTEMPT=1 \
  GITHUB_WORKFLOW_REF=trustfabric/trustfabric/.github/workflows/release.yml@refs/heads/main RUNNER_ENVIRONMENT=self-hosted
"$tf" attest "$ref" --ts "$TF_SELFTEST_TS" --identity-server "$TF_SELFTEST_IDS" --output json >"$work/attest.json"
"$tf" verify "$ref" --policy "$TF_SELFTEST_POLICY" >"$work/verify.txt" || {
  cat "$work/verify.txt"
  exit 1
}
grep -q '^ALLOW ' "$work/verify.txt"

# The shell variant: its busybox runs its CLI, and the verify component's
# script gates an attested image (allow) and the unattested shell image (deny).
"$work/bin/image" --repo "$shell_ref" --insecure --extract "$host" --rootfs "$work/shellroot"
got="$(env -i PATH="$work/shellroot/usr/local/bin:$work/shellroot/bin" "$work/shellroot/bin/sh" -c 'trustfabric --version')"
[ "$got" = "trustfabric $version" ] || { echo "the shell image's sh -c 'trustfabric --version' says \"$got\""; exit 1; }
# The Tekton verify Task and StepAction, and the attest Task: their exec-form
# command and args run by the image's CLI (allow, deny, deny reported only;
# the attest results written).
TF_SHELL_IMAGE_ROOT="$work/shellroot" TF_IMAGE_CLI="$work/from-image" TF_SHELL_IMAGE_ALLOW="$ref" \
  TF_SHELL_IMAGE_DENY="$shell_ref" TF_SHELL_IMAGE_POLICY="$TF_SELFTEST_POLICY" \
  go test -count=1 -v -run '^(TestVerifyComponentInShellImage|TestTektonVerifyWithImageCLI|TestTektonAttestWithImageCLI)$' ./internal/citest \
  >"$work/image-tests.txt" 2>&1 || {
  cat "$work/image-tests.txt"
  exit 1
}
for t in TestVerifyComponentInShellImage TestTektonVerifyWithImageCLI TestTektonAttestWithImageCLI; do
  grep -q -- "--- PASS: $t " "$work/image-tests.txt" || {
    cat "$work/image-tests.txt"
    echo "$t did not run"
    exit 1
  }
done

# The release's CI manifests, pinned to what was pushed.
go run ./devtools/release --out "$work/manifests" --pin-image "$ref" --pin-shell-image "$shell_ref" >/dev/null
if grep -l 'sha256:0\{64\}' "$work"/manifests/*; then echo "a placeholder digest is left"; exit 1; fi
grep -q "default: $ref" "$work/manifests/trustfabric-attest.yaml"
grep -q "image: $ref" "$work/manifests/trustfabric-verify-step.yaml"
grep -q "default: $shell_ref" "$work/manifests/gitlab-verify.yml"
echo "image: built for linux/amd64 and linux/arm64, pushed, its binary ran, attested and verified ($ref);"
echo "  shell variant (linux/$arch) pushed, the verify component ran in it ($shell_ref); the Tekton verify"
echo "  and attest steps' args ran with the image's CLI; CI manifests pinned"
