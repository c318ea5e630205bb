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
parse_targets_out_args "$@"

# readelf (binutils) finds the libraries each binary needs; the libraries come from these Debian packages.
pkgs="binutils ca-certificates"
for t in $TARGETS; do pkgs="$pkgs $(target_apt_packages "$t")"; done
# shellcheck disable=SC2086
ensure_apt_packages $(echo "$pkgs" | tr ' ' '\n' | sort -u)

# shellcheck disable=SC2086
ensure_binaries 0 $TARGETS

node --import tsx scripts/image/build-image.ts --targets "${TARGETS// /,}" --out "$OUT"
echo "images and DIGESTS in $OUT"
