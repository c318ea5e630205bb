#!/usr/bin/env bash
# `npm run bench`: installs the servers and fetchmail if missing, then runs the bench (pop2mqtt vs fetchmail on real Dovecot + Mosquitto). Flags go to main.ts.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/install-system-deps.sh
exec node --import tsx scripts/bench/main.ts "$@"
