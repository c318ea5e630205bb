// Bundles the TypeScript sources into dist/pop2mqtt.cjs (one CommonJS file) for bin/pop2mqtt.js and the single binaries.
// Usage: node scripts/build-bundle.mjs [--entry FILE] [--outfile FILE]   (defaults: src/cli/main.ts -> dist/pop2mqtt.cjs)
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stub = path.join(root, 'scripts', 'empty-module.cjs');
const { values } = parseArgs({
  options: { entry: { type: 'string' }, outfile: { type: 'string' } },
  strict: true,
});

const outfile = path.resolve(values.outfile ?? path.join(root, 'dist', 'pop2mqtt.cjs'));
await build({
  entryPoints: [path.resolve(values.entry ?? path.join(root, 'src', 'cli', 'main.ts'))],
  outfile,
  // The default, stated: code, strings and regexps come out as ASCII (non-ASCII escaped).
  charset: 'ascii',
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

// V8 keeps a script's source as one-byte text only if every character fits in Latin-1; a single character above
// U+00FF makes it keep the whole 4.9 MB source as two-byte text (about 5 MB more in every process). With
// charset 'ascii' such characters can only remain in comments kept from dependencies: replace them there.
const text = readFileSync(outfile, 'utf8');
const wide = /[^\u0000-\u00ff]/;
let replaced = 0;
const lines = text.split('\n').map((line, i) => {
  const at = line.search(wide);
  if (at < 0) return line;
  const comment = line.lastIndexOf('//', at);
  if (!(comment >= 0 || /^\s*(\*|\/\*)/.test(line))) throw new Error(`bundle line ${i + 1}: a character above U+00FF outside a comment`);
  return line.replace(/[^\u0000-\u00ff]/gu, () => (replaced++, '?'));
});
if (replaced) writeFileSync(outfile, lines.join('\n'));
