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
