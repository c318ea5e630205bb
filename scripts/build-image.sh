#!/usr/bin/env bash
# Builds the container images (`npm run build:image`): OCI archives for linux/amd64, arm64 and arm/v7 in dist/image/, offline, from the single binaries (built first when missing or stale).
# Usage: scripts/build-image.sh [--targets x64,arm64,armv7l] [--out DIR]   (default out: dist/image)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=binaries/targets.sh
. "$ROOT/scripts/binaries/targets.sh"
cd "$ROOT"

TARGETS_ARG="${POP2MQTT_BUILD_TARGETS:-$ALL_TARGETS}"
OUT="$DIST_DIR/image"
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS_ARG="${2:?--targets needs a value}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,3p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
TARGETS="$(parse_targets "$TARGETS_ARG")"

# readelf (binutils) finds the libraries each binary needs; the libraries come from these Debian packages.
pkgs="binutils ca-certificates"
for t in $TARGETS; do pkgs="$pkgs $(target_apt_packages "$t")"; done
# shellcheck disable=SC2086
ensure_apt_packages $(echo "$pkgs" | tr ' ' '\n' | sort -u)

node scripts/build-bundle.mjs || die "bundle failed"
need=0
for t in $TARGETS; do [ -x "$(target_binary "$t")" ] || need=1; done
cmp -s "$DIST_DIR/pop2mqtt.cjs" "$SEA_DIR/pop2mqtt.cjs" 2>/dev/null || need=1
[ "$need" = 0 ] || bash scripts/build-binaries.sh --targets "${TARGETS// /,}"

node --import tsx scripts/image/build-image.ts --targets "${TARGETS// /,}" --out "$OUT"
echo "images and DIGESTS in $OUT"
