#!/usr/bin/env bash
# Prints the resting footprint of a single binary: RSS after 1/10/50/100 polls, peak RSS, CPU and bytes per idle poll.
# Usage: scripts/binaries/footprint.sh [--target x64] [--polls 100] [--reference] [--node-options OPTS] [--tls starttls|implicit|none] [--new-mail 1|0] [--env K=V] [--marks 10,100,500,1000]
#   (takes about polls seconds; not part of the tests; --reference measures `node bin/pop2mqtt.js` instead)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=targets.sh
. "$ROOT/scripts/binaries/targets.sh"
cd "$ROOT"
TARGET=x64
POLLS=100
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET="${2:?}"; shift 2 ;;
    --polls) POLLS="${2:?}"; shift 2 ;;
    --reference) EXTRA+=(--reference); shift ;;
    --tls) EXTRA+=(--tls "${2:?}"); shift 2 ;;
    --node-options) EXTRA+=("--node-options=${2:?}"); shift 2 ;;
    --new-mail) EXTRA+=(--new-mail "${2:?}"); shift 2 ;;
    --env) EXTRA+=(--env "${2:?}"); shift 2 ;;
    --marks) EXTRA+=(--marks "${2:?}"); shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
target_pkg "$TARGET" >/dev/null
# shellcheck disable=SC2046
ensure_apt_packages dovecot-core dovecot-pop3d mosquitto $(target_apt_packages "$TARGET")
[ -x "$(target_binary "$TARGET")" ] || bash scripts/build-binaries.sh --targets "$TARGET"
timeout $(( POLLS * 8 + 300 )) node --import tsx scripts/binaries/footprint.ts --target "$TARGET" --polls "$POLLS" "${EXTRA[@]}"
