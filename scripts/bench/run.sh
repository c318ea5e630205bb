#!/usr/bin/env bash
# `npm run bench`: installs the servers and fetchmail if missing, then runs the bench (pop2mqtt vs fetchmail on real Dovecot + Mosquitto). Flags go to main.ts.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/install-system-deps.sh
if [ ! -x /usr/bin/time ]; then
  # GNU time measures peak RSS; it is not part of a minimal Debian.
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time
fi
exec node --import tsx scripts/bench/main.ts "$@"
