#!/usr/bin/env bash
# Installs @transmute/cose (exact versions of package-lock.json) for
# cmd/trustfabric's TestTransmuteInterop into a cache directory outside the
# clone: ${TRUSTFABRIC_INTEROP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trustfabric/npm/interop}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${TRUSTFABRIC_INTEROP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trustfabric/npm/interop}"
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
echo "node_modules for the interop test: $dir/node_modules"
