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
files=("$out"/*)
echo "built ${#files[@]} files"
(cd "$out" && sha256sum -c --quiet checksums.txt)
n=$(wc -l <"$out/checksums.txt")
[ "$n" -eq 12 ] || { echo "checksums.txt has $n lines, want 12 (6 binaries, 6 archives)"; exit 1; }
# (Listings are read whole before grep: `tar … | grep -q` under pipefail
# fails when grep stops reading early.)
for p in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
  list="$(tar -tzf "$out/trustfabric_${version}_$p.tar.gz")"
  for f in trustfabric LICENSE README.md CHANGELOG.md; do
    grep -qx "trustfabric_${version}_$p/$f" <<<"$list" || { echo "$p.tar.gz lacks $f"; exit 1; }
  done
done
for p in windows_amd64 windows_arm64; do
  if [ ! -s "$out/trustfabric_${version}_$p.zip" ] || [ ! -s "$out/trustfabric_${version}_$p.exe" ]; then
    echo "missing the $p zip or exe"
    exit 1
  fi
done
host="$(go env GOOS)_$(go env GOARCH)"
got="$("$out/trustfabric_${version}_$host" version)"
grep -q "^trustfabric $version\$" <<<"$got" || { echo "the $host binary says: $got"; exit 1; }
echo "release dry run: 6 platforms, $n checksums verified"
