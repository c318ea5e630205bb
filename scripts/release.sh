#!/usr/bin/env bash
# Writes release/<version>/ (`npm run release`): the single binaries, the container images, the install files, the release notes from CHANGELOG.md, and SHA256SUMS over all of them.
# Usage: scripts/release.sh [--targets x64,arm64,armv7l] [--out DIR]   (default out: release/<version>)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=binaries/targets.sh
. "$ROOT/scripts/binaries/targets.sh"
cd "$ROOT"

VERSION="$(node -p 'require("./package.json").version')"
TARGETS_ARG="$ALL_TARGETS"
OUT=""
parse_targets_out_args "$@"
OUT="${OUT:-$ROOT/release/$VERSION}"

# A fresh directory: the default one is cleared, a given one must be empty (nothing stale slips into SHA256SUMS).
if [ "$OUT" = "$ROOT/release/$VERSION" ]; then
  rm -rf "$OUT"
elif [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
  die "$OUT is not empty"
fi
mkdir -p "$OUT"
# The notes first: a release without its CHANGELOG section stops before anything is built.
node --import tsx scripts/release/notes.ts CHANGELOG.md "$VERSION" "$OUT/RELEASE_NOTES.md"

# Binaries (rebuilt when stale) and images (written straight into the release), both from the current sources.
bash scripts/build-image.sh --targets "${TARGETS// /,}" --out "$OUT"
for t in $TARGETS; do cp -f "$(target_binary "$t")" "$OUT/"; done
cp -f scripts/install.sh config/pop2mqtt.service config/example.yaml LICENSE "$OUT/"

(
  cd "$OUT"
  rm -f SHA256SUMS
  find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS
)
echo "release $VERSION in $OUT:"
(cd "$OUT" && ls -l)
