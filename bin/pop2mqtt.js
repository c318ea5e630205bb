#!/usr/bin/env node
// Entry point for `npx pop2mqtt` from a checkout: runs the esbuild bundle made by `npm run build` (done by npm ci); it loads dist/pop2mqtt-chunks/ on demand.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../dist/pop2mqtt.cjs', import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write('pop2mqtt: dist/pop2mqtt.cjs is missing; run `npm run build` first\n');
  process.exit(2);
}
createRequire(import.meta.url)(bundle);
