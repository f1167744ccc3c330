#!/usr/bin/env bash
# Builds a one-layer image holding random bytes and pushes it with crane.
# Usage: image.sh REPOSITORY TAG. Writes the step output digest.
set -euo pipefail
repo="$1" tag="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
head -c 4096 /dev/urandom >"$dir/payload"
tar -C "$dir" -cf "$dir/layer.tar" payload
if ! command -v crane >/dev/null 2>&1; then
  GOBIN="$(go env GOPATH)/bin" go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
  PATH="$(go env GOPATH)/bin:$PATH"
fi
crane="${CRANE:-crane}"
"$crane" append --insecure -f "$dir/layer.tar" -t "$repo:$tag" >/dev/null
digest="$("$crane" digest --insecure "$repo:$tag")"
echo "pushed $repo:$tag@$digest"
echo "digest=$digest" >>"${GITHUB_OUTPUT:-/dev/stdout}"
