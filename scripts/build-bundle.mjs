// Bundles the TypeScript sources into dist/pop2mqtt.cjs (one CommonJS file) for bin/pop2mqtt.js and the single binaries.
// Usage: node scripts/build-bundle.mjs [--entry FILE] [--outfile FILE]   (defaults: src/cli/main.ts -> dist/pop2mqtt.cjs)
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stub = path.join(root, 'scripts', 'empty-module.cjs');
const { values } = parseArgs({
  options: { entry: { type: 'string' }, outfile: { type: 'string' } },
  strict: true,
});

await build({
  entryPoints: [path.resolve(values.entry ?? path.join(root, 'src', 'cli', 'main.ts'))],
  outfile: path.resolve(values.outfile ?? path.join(root, 'dist', 'pop2mqtt.cjs')),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // Prefer packages' CommonJS builds: ESM builds may use import.meta.url, which is undefined in a CJS bundle.
  mainFields: ['main', 'module'],
  conditions: ['require', 'node', 'default'],
  alias: {
    // Optional native add-ons of ws and debug: never needed, and absent in a single binary.
    bufferutil: stub, 'utf-8-validate': stub, 'supports-color': stub,
    // node-cron's package exports pick its ESM build (import.meta.url at load); force the CommonJS one.
    'node-cron': path.join(root, 'node_modules', 'node-cron', 'dist', 'node-cron.cjs'),
  },
});
