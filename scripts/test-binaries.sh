#!/usr/bin/env bash
# Builds the single binaries when missing or stale, runs their smoke/poll tests, and prints size and cold-start figures.
# Usage: scripts/test-binaries.sh [--targets x64,arm64,armv7l] [--rebuild] [--no-measure]
# The 100-poll idle RSS figure is separate: scripts/binaries/footprint.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=binaries/targets.sh
. "$ROOT/scripts/binaries/targets.sh"
cd "$ROOT"

TARGETS_ARG="${POP2MQTT_BINARY_TARGETS:-$ALL_TARGETS}"
REBUILD=0
MEASURE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS_ARG="${2:?--targets needs a value}"; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    --no-measure) MEASURE=0; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
TARGETS="$(parse_targets "$TARGETS_ARG")"

# Runtime needs: emulators and target libraries, real servers for the poll test, hyperfine for start-up timing.
# skopeo reads the container images (test/binaries/image.test.ts) as an independent check of their format.
pkgs="dovecot-core dovecot-pop3d mosquitto mosquitto-clients util-linux skopeo binutils ca-certificates"
[ "$MEASURE" = 1 ] && pkgs="$pkgs hyperfine time"
for t in $TARGETS; do pkgs="$pkgs $(target_apt_packages "$t")"; done
# shellcheck disable=SC2086
ensure_apt_packages $(echo "$pkgs" | tr ' ' '\n' | sort -u)

# The reference for "behaves like node bin/pop2mqtt.js" is dist/pop2mqtt.cjs from the current sources; the binaries are
# rebuilt when one is missing, they were made from another bundle, or with --rebuild.
# shellcheck disable=SC2086
ensure_binaries "$REBUILD" $TARGETS

# Tests, one file at a time (qemu runs are heavy).
export POP2MQTT_BINARY_TARGETS="$TARGETS"
timeout 3600 node --import tsx --test --test-concurrency=1 test/binaries/*.test.ts

[ "$MEASURE" = 1 ] || exit 0
echo
echo "== size =="
printf '%-26s %12s %12s\n' binary "raw bytes" "gzip bytes"
for t in $TARGETS; do
  f="$(target_binary "$t")"; raw="$(stat -c %s "$f")"; gz="$(gzip -6 -c "$f" | wc -c)"
  printf '%-26s %12s %12s   (%s MiB / %s MiB)\n' "$(basename "$f")" "$raw" "$gz" "$(( raw / 1048576 ))" "$(( gz / 1048576 ))"
done
echo
echo "== cold start to --version (hyperfine; ARM under qemu-user, so far slower than on a real board) =="
for t in $TARGETS; do
  runner="$(target_runner "$t")"; f="$(target_binary "$t")"
  runs=10; [ -n "$runner" ] && runs=3
  # shellcheck disable=SC2086
  hyperfine --style basic --warmup 1 --runs "$runs" -N "$runner $f --version" --export-json "$SEA_DIR/start-$t.json" >/dev/null \
    || die "hyperfine failed for $t"
  # shellcheck disable=SC2086
  rss="$( { env -u NODE_OPTIONS /usr/bin/time -f '%M' $runner "$f" --version >/dev/null; } 2>&1 | tail -1)"
  node -e 'const r=require(process.argv[1]).results[0];console.log(`${process.argv[2].padEnd(8)} mean ${(r.mean*1000).toFixed(0)} ms  (min ${(r.min*1000).toFixed(0)}, max ${(r.max*1000).toFixed(0)}, ${r.times.length} runs)  max RSS of --version ${(Number(process.argv[3])/1024).toFixed(1)} MiB${process.argv[4]?" (includes qemu)":""}`)' \
    "$SEA_DIR/start-$t.json" "$t" "$rss" "$runner"
done
