#!/usr/bin/env bash
# `npm run soak`: thousands of real polls against private Dovecot + Mosquitto, reporting the agent's RSS growth and open fds (not part of npm test).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
exec node --import tsx scripts/soak.ts "$@"
