#!/usr/bin/env bash
# `npm run demo`: a real local Dovecot and Mosquitto, a seeded mailbox, the agent running, and the MQTT alerts as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh >/dev/null
node scripts/build-bundle.mjs
exec node --import tsx scripts/demo.ts
