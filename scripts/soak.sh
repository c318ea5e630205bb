#!/usr/bin/env bash
# `npm run soak`: thousands of real polls against private Dovecot + Mosquitto, reporting the agent's RSS growth and open fds (not part of npm test).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
# Measure what the systemd unit runs: it sets MALLOC_ARENA_MAX=1 (see config/pop2mqtt.service).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-1}"
exec node --import tsx scripts/soak.ts "$@"
