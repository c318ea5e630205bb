// Bundles the TypeScript sources into dist/pop2mqtt.cjs (CommonJS) plus lazily loaded chunks, for bin/pop2mqtt.js and the single binaries.
// Usage: node scripts/build-bundle.mjs [--entry FILE] [--outfile FILE] [--single]   (defaults: src/cli/main.ts -> dist/pop2mqtt.cjs)   (one bundle per directory: its chunks go to <dir>/pop2mqtt-chunks)
//
// Every dynamic import() in the sources is a chunk boundary: the main file holds what every command needs, and each
// command, the MIME parser, the OAuth client... sits in its own file of <outdir>/pop2mqtt-chunks/, read and compiled
// only when first imported (an idle poll never holds the source of the MIME parser). esbuild splits as ESM; each
// file is then turned into CommonJS, and the main file gets a tiny loader: under plain Node chunks are require()d
// from disk, in a single binary (Node SEA) they are SEA assets of the same names (list: pop2mqtt-chunks/index.json).
// --single writes one file with everything in it (the old layout; for Node builds without SEA assets, < 20.12).
import { build, transform } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values } = parseArgs({
  options: { entry: { type: 'string' }, outfile: { type: 'string' }, single: { type: 'boolean', default: false } },
  strict: true,
});
/** Directory of the chunks, next to the main file; also the prefix of their SEA asset names. */
const CHUNK_DIR = 'pop2mqtt-chunks';

/**
 * mqtt.js requires its WebSocket and SOCKS transports (ws, socks, ip-address, smart-buffer) at the first connect even for
 * mqtt:// and mqtts://, and its browser timers (worker-timers, with @babel/runtime, broker-factory, fast-unique-numbers)
 * when loaded, though only a browser or `timerVariant: 'worker'` uses them. mailparser requires html-to-text (with
 * htmlparser2, entities, domutils...) when loaded, though with the options src/message/body.ts gives it
 * (skipHtmlToText) it never calls it: body.ts converts HTML itself, only for a message without text.
 * These stand-ins have the same exports and require the real module only when one is called. Split, each
 * real module is an entry file of its own (<chunk dir>/<file>.cjs, exporting it as `default`), so an agent that never
 * calls them does not even hold their source (410 KB of the chunk with the MQTT client, 330 KB of the MIME parser's);
 * --single bundles them in the one file. `base`: the directory the real module is required from.
 */
const MQTT_LAZY = [
  { dir: /[\\/]mqtt[\\/]build[\\/]lib[\\/]connect$/, request: './ws', names: ['streamBuilder', 'browserStreamBuilder'], file: 'mqtt-ws', base: 'node_modules/mqtt/build/lib/connect' },
  { dir: /[\\/]mqtt[\\/]build[\\/]lib[\\/]connect$/, request: './socks', names: ['default'], file: 'mqtt-socks', base: 'node_modules/mqtt/build/lib/connect' },
  { dir: /[\\/]mqtt[\\/]build[\\/]lib$/, request: 'worker-timers', names: ['setInterval', 'clearInterval'], file: 'mqtt-worker-timers', base: 'node_modules/mqtt/build/lib' },
  { dir: /[\\/]mailparser[\\/]lib$/, request: 'html-to-text', names: ['htmlToText'], file: 'mailparser-html-to-text', base: 'node_modules/mailparser/lib' },
];
/** Entry points of the split build: `${LAZY_ENTRY}<file>` is the module that re-exports MQTT_LAZY's real module. */
const LAZY_ENTRY = 'mqtt-lazy-entry:';
const mqttLazyTransports = {
  name: 'mqtt-lazy-transports',
  setup(b) {
    const split = !values.single;
    b.onResolve({ filter: /^(\.\/ws|\.\/socks|worker-timers|html-to-text)$/ }, (a) => {
      const lazy = MQTT_LAZY.find((l) => l.request === a.path && l.dir.test(a.resolveDir));
      if (a.namespace !== 'file' || !lazy) return undefined;
      // The stand-in's own require() of the same request resolves normally (its namespace is not 'file').
      return { path: path.join(a.resolveDir, a.path), namespace: 'mqtt-lazy', pluginData: { lazy, resolveDir: a.resolveDir } };
    });
    b.onResolve({ filter: /^\.\/(mqtt|mailparser)-[a-z-]+\.cjs$/ }, (a) => (a.namespace === 'mqtt-lazy' ? { path: a.path, external: true } : undefined));
    b.onResolve({ filter: new RegExp(`^${LAZY_ENTRY}`) }, (a) => ({ path: a.path.slice(LAZY_ENTRY.length), namespace: 'mqtt-lazy-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'mqtt-lazy-entry' }, (a) => {
      const lazy = MQTT_LAZY.find((l) => l.file === a.path);
      return { resolveDir: path.join(root, ...lazy.base.split('/')), loader: 'js', contents: `module.exports = require(${JSON.stringify(lazy.request)});\n` };
    });
    b.onLoad({ filter: /.*/, namespace: 'mqtt-lazy' }, (a) => {
      const { lazy, resolveDir } = a.pluginData;
      const real = split ? `require(${JSON.stringify(`./${lazy.file}.cjs`)}).default` : `require(${JSON.stringify(lazy.request)})`;
      return {
        resolveDir, loader: 'js',
        contents: `Object.defineProperty(exports, '__esModule', { value: true });\nlet real;\nconst load = () => (real ??= ${real});\n`
          + lazy.names.map((n) => `exports.${n} = (...args) => load().${n}(...args);\n`).join(''),
      };
    });
  },
};

/**
 * Two modules of mqtt.js's dependencies that load Node built-ins an idle agent otherwise never needs (each part
 * checked: a dependency whose code no longer matches fails the build):
 * - debug (mqtt.js, mqtt-packet, socks) asks tty whether stderr is a terminal for every logger it creates, though
 *   they print only for namespaces listed in $DEBUG: without DEBUG set (read once, as debug does) its loggers are
 *   silent stand-ins and debug itself is never evaluated.
 * - lru-cache (mqtt.js's topic aliases) looks up `performance` when evaluated, which makes Node load perf_hooks;
 *   it only reads performance.now() for entries with a TTL, which mqtt.js never sets: looked up on first use.
 * Idle `once` -0.1 and -0.2 MiB.
 */
const DEPENDENCY_PATCHES = [
  {
    file: /[\\/]node_modules[\\/]debug[\\/]src[\\/]index\.js$/,
    from: "if (typeof process === 'undefined'",
    to: "if (typeof process === 'object' && !process.env.DEBUG) {\n"
      + "  const silent = (namespace) => Object.assign(() => {}, { namespace, enabled: false, log: () => {}, destroy: () => true, extend: (sub, d = ':') => silent(namespace + d + sub) });\n"
      + "  module.exports = Object.assign(silent, { enabled: () => false });\n"
      + "} else if (typeof process === 'undefined'",
  },
  {
    // mailparser's first stage copies every write into a new buffer (Buffer.concat with what it holds) until it holds
    // 64 KiB. body.ts writes 64 KiB at a time (PARSER_WRITE_BYTES): such a write, with nothing held, goes on as it is,
    // one copy of every RETR byte less (the stages after it only slice it).
    file: /[\\/]node_modules[\\/]@zone-eu[\\/]mailsplit[\\/]lib[\\/]chunked-passthrough\.js$/,
    from: [["    _transform(chunk, encoding, callback) {\n        this.buffer = Buffer.concat([this.buffer, chunk]);", "    _transform(chunk, encoding, callback) {\n        if (this.buffer.length === 0 && chunk.length >= this.chunkSize) {\n            this.push(chunk);\n            return callback();\n        }\n        this.buffer = Buffer.concat([this.buffer, chunk]);"]],
  },
  {
    // mailparser sets up linkify-it with the full TLD list (tlds: 1,500 names compiled into one regexp) when loaded,
    // for links in text it turns into HTML, which body.ts switches off (skipTextLinks): set up on first use instead.
    file: /[\\/]node_modules[\\/]mailparser[\\/]lib[\\/]mail-parser\.js$/,
    from: [
      ["const linkify = require('linkify-it')();\nconst tlds = require('tlds');", "let linkifyReady;\nconst linkifyIt = () => (linkifyReady ??= linkifyTwitter(linkifySetup(require('linkify-it')(), require('tlds'))));"],
      ["linkify\n    .tlds(tlds) // Reload with full tlds list", "const linkifySetup = (linkify, tlds) => linkify\n    .tlds(tlds) // Reload with full tlds list"],
      ["linkify.add('@', {", "const linkifyTwitter = (linkify) => linkify.add('@', {"],
      ["!linkify.pretest(str)", "!linkifyIt().pretest(str)"],
      ["linkify.match(segment)", "linkifyIt().match(segment)"],
    ],
  },
  {
    file: /[\\/]node_modules[\\/]lru-cache[\\/]dist[\\/]commonjs[\\/]index\.js$/,
    from: "const perf = typeof performance === 'object' &&\n    performance &&\n    typeof performance.now === 'function'\n    ? performance\n    : Date;",
    to: "const perf = { now: () => performance.now() };",
  },
];
const dependencyPatches = {
  name: 'dependency-patches',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/](debug|lru-cache|mailparser|@zone-eu[\\/]mailsplit)[\\/].*\.js$/ }, (a) => {
      const patch = DEPENDENCY_PATCHES.find((p) => p.file.test(a.path));
      if (!patch) return undefined;
      let code = readFileSync(a.path, 'utf8');
      for (const [from, to] of Array.isArray(patch.from) ? patch.from : [[patch.from, patch.to]]) {
        if (code.split(from).length !== 2) throw new Error(`${a.path} changed: ${JSON.stringify(from)} not found once`);
        code = code.replace(from, () => to);
      }
      return { contents: code, loader: 'js', resolveDir: path.dirname(a.path) };
    });
  },
};

/**
 * node-cron reads local wall-clock time and UTC offsets through Intl.DateTimeFormat even without a time zone, and the
 * first one a process creates costs about 8 MiB (ICU's locale and calendar data): a daemon's whole schedule. Without a
 * time zone (pop2mqtt never gives one) its two formatters are swapped for src/cron-local-time.ts, which reads the
 * same parts with Date. With a time zone node-cron's own code runs. A node-cron whose code no longer matches fails
 * the build.
 */
const CRON_INTL = [
  ["formatter = new Intl.DateTimeFormat('en-US', dftOptions);", "formatter = timezone ? new Intl.DateTimeFormat('en-US', dftOptions) : __p2mLocalTime.localParts;"],
  ["formatter = new Intl.DateTimeFormat('en-US', {\n            timeZone: timezone,", "formatter = timezone === undefined ? __p2mLocalTime.localOffset : new Intl.DateTimeFormat('en-US', {\n            timeZone: timezone,"],
];
const cronLocalTime = {
  name: 'cron-local-time',
  setup(b) {
    b.onLoad({ filter: /[\\/]node-cron[\\/]dist[\\/]_shared\.cjs$/ }, (a) => {
      let code = readFileSync(a.path, 'utf8');
      for (const [from, to] of CRON_INTL) {
        if (code.split(from).length !== 2) throw new Error(`node-cron changed: ${JSON.stringify(from)} not found once in ${a.path}`);
        code = code.replace(from, to);
      }
      const helper = JSON.stringify(path.join(root, 'src', 'cron-local-time.ts'));
      return { contents: `const __p2mLocalTime = require(${helper});\n${code}`, loader: 'js', resolveDir: path.dirname(a.path) };
    });
  },
};

/**
 * npm installs the same version of a package more than once when the top level holds another version (iconv-lite 0.7.3
 * under both mailparser and libmime, 0.6.3 at the top), and esbuild bundles every copy it is given: the two MIME
 * chunks a body rule loads held 497 KB of iconv-lite each. Imports of the packages named here resolve to one copy per
 * version (the first path in sorted order), so identical code is bundled and evaluated once.
 */
const DEDUPE = ['iconv-lite'];
const dedupeSameVersion = {
  name: 'dedupe-same-version',
  setup(b) {
    const nm = path.join(root, 'node_modules');
    /** `${name}@${version}` -> the package directory every copy of it is read from. */
    const canonical = new Map();
    for (const name of DEDUPE) {
      const dirs = [path.join(nm, name), ...readdirSync(nm).flatMap((d) => (d.startsWith('@') ? readdirSync(path.join(nm, d)).map((s) => `${d}/${s}`) : [d])).map((d) => path.join(nm, d, 'node_modules', name))];
      for (const dir of dirs.sort()) {
        let version;
        try { version = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version; } catch { continue; }
        if (!canonical.has(`${name}@${version}`)) canonical.set(`${name}@${version}`, dir);
      }
    }
    const filter = new RegExp(`^(${DEDUPE.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})(/.*)?$`);
    b.onResolve({ filter }, async (a) => {
      if (a.pluginData?.dedupe) return undefined;
      const r = await b.resolve(a.path, { kind: a.kind, importer: a.importer, resolveDir: a.resolveDir, pluginData: { dedupe: true } });
      if (r.errors.length || !r.path) return undefined;
      const name = filter.exec(a.path)[1];
      const marker = `${path.sep}node_modules${path.sep}${name}${path.sep}`;
      const at = r.path.lastIndexOf(marker);
      if (at < 0) return undefined;
      const dir = r.path.slice(0, at + marker.length - 1);
      const version = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
      const one = canonical.get(`${name}@${version}`) ?? dir;
      return { path: one + r.path.slice(dir.length) };
    });
  },
};

const outfile = path.resolve(values.outfile ?? path.join(root, 'dist', 'pop2mqtt.cjs'));
const common = {
  entryPoints: [{ in: path.resolve(values.entry ?? path.join(root, 'src', 'cli', 'main.ts')), out: 'main' }],
  // The default, stated: code, strings and regexps come out as ASCII (non-ASCII escaped).
  charset: 'ascii',
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  // Every chunk's source text stays in the heap while its functions live (1.0 MB in an idle `once`): without
  // indentation, line breaks and comments it is 25 % smaller. Identifiers and syntax are left as written (stack
  // traces keep function names; their columns point into long lines). Idle `once` 53.9 -> 53.5-53.7 MiB.
  minifyWhitespace: true,
  logLevel: 'warning',
  // Prefer packages' CommonJS builds: ESM builds may use import.meta.url, which is undefined in a CJS bundle.
  mainFields: ['main', 'module'],
  conditions: ['require', 'node', 'default'],
  plugins: [mqttLazyTransports, dependencyPatches, cronLocalTime, dedupeSameVersion],
  // Optional add-ons of ws and debug, required inside try/catch: left out, so that require() throws and they fall back
  // to their JavaScript code (an empty stand-in made ws call a missing bufferUtil.mask on any ws:// frame >= 48 bytes).
  external: ['bufferutil', 'utf-8-validate', 'supports-color'],
  alias: {
    // node-cron's package exports pick its ESM build (import.meta.url at load); force the CommonJS one.
    'node-cron': path.join(root, 'node_modules', 'node-cron', 'dist', 'node-cron.cjs'),
    // mqtt.js and bl use Writable, Readable and Duplex from readable-stream, a userland copy of Node's streams (180 KB
    // evaluated at start, with its process/abort-controller/string_decoder shims): Node's own serve the same API.
    // Idle `once` 56.4 -> 55.7 MiB.
    'readable-stream': 'node:stream',
    // src/message/html-text.ts imports html-to-text and mailparser require()s it: the import condition would pick its
    // ESM build (and htmlparser2's, entities'...), the second copy of each in the bundle. Both get the CommonJS one.
    'html-to-text': path.join(root, 'node_modules', 'html-to-text', 'lib', 'html-to-text.cjs'),
    // zod's ESM build, so that the mini API tree-shakes (src/zod.ts): its CommonJS build is one module graph of 900 KB.
    'zod/mini': path.join(root, 'node_modules', 'zod', 'v4', 'mini', 'index.js'),
    'zod/v4/core': path.join(root, 'node_modules', 'zod', 'v4', 'core', 'index.js'),
    'zod/v4/locales': path.join(root, 'node_modules', 'zod', 'v4', 'locales'),
  },
};

// V8 keeps a script's source as one-byte text only if every character fits in Latin-1; a single character above
// U+00FF makes it keep the whole source as two-byte text (twice the bytes, in every process). With charset 'ascii'
// such characters can only remain in comments kept from dependencies: replace them there. Checked for every file.
function latin1Only(text, name) {
  const wide = /[^\u0000-\u00ff]/;
  return text.split('\n').map((line, i) => {
    const at = line.search(wide);
    if (at < 0) return line;
    const comment = line.lastIndexOf('//', at);
    if (!(comment >= 0 || /^\s*(\*|\/\*)/.test(line))) throw new Error(`${name} line ${i + 1}: a character above U+00FF outside a comment`);
    return line.replace(/[^\u0000-\u00ff]/gu, '?');
  }).join('\n');
}

/** Loader put in front of the main file: `__p2mRequire("./pop2mqtt-chunks/x.cjs")` loads a chunk from disk or, in a single binary, from its SEA asset. */
const LOADER = `var __p2mRequire = (() => {
  let sea;
  try { sea = require("node:sea"); if (!sea.isSea()) sea = undefined; } catch { sea = undefined; }
  if (!sea) return (id) => require(id);
  const vm = require("node:vm");
  const path = require("node:path");
  const cache = Object.create(null);
  const load = (asset) => {
    if (cache[asset]) return cache[asset].exports;
    const mod = { exports: {} };
    cache[asset] = mod;
    const dir = path.posix.dirname(asset);
    const req = (id) => id.startsWith("./") ? load(path.posix.join(dir, id)) : require(id);
    const fn = vm.compileFunction(sea.getAsset(asset, "utf8"), ["exports", "require", "module", "__filename", "__dirname"], { filename: asset });
    fn.call(mod.exports, mod.exports, req, mod, __filename, __dirname);
    return mod.exports;
  };
  return (id) => load(path.posix.normalize(id));
})();
`;

const chunkDir = path.join(path.dirname(outfile), CHUNK_DIR);

/**
 * One bundle per directory: the chunks sit in <dir>/pop2mqtt-chunks and each build removes the chunks its main file
 * does not use, so a second bundle built into the same directory (an A/B pair in /tmp) would break the first.
 */
function assertOnlyBundleIn(dir) {
  let names = [];
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) {
    const f = path.join(dir, n);
    if (!n.endsWith('.cjs') || f === outfile) continue;
    let head = '';
    try { head = readFileSync(f, 'latin1').slice(0, 4096); } catch { continue; }
    if (head.includes('var __p2mRequire')) {
      console.error(`build-bundle: ${f} is another bundle using ${path.join(dir, CHUNK_DIR)}; build each bundle into its own directory (e.g. --outfile ${path.join(dir, path.basename(outfile, '.cjs'), 'pop2mqtt.cjs')})`);
      process.exit(1);
    }
  }
}
assertOnlyBundleIn(path.dirname(outfile));

/**
 * A rebuild while the CLI runs (a daemon started from the checkout, a test suite, a second `npm ci`) must never
 * leave a moment in which a chunk that process may still require() is missing: every file is written beside its
 * place and renamed over it (chunk names are content hashes, so an unchanged chunk keeps its name), and only
 * then are the chunks of the previous build that this one no longer has removed.
 */
function writeAtomic(file, text) {
  const tmpFile = `${file}.${process.pid}.tmp`;
  writeFileSync(tmpFile, text);
  renameSync(tmpFile, file);
}

if (values.single) {
  rmSync(chunkDir, { recursive: true, force: true });
  await build({ ...common, outfile, format: 'cjs' });
  writeFileSync(outfile, latin1Only(readFileSync(outfile, 'utf8'), path.basename(outfile)));
} else {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'p2m-bundle-'));
  try {
    const result = await build({
      ...common, format: 'esm', splitting: true, outdir: tmp, write: true, metafile: true,
      entryPoints: [...common.entryPoints, ...MQTT_LAZY.map((l) => ({ in: LAZY_ENTRY + l.file, out: `${CHUNK_DIR}/${l.file}` }))],
      entryNames: '[dir]/[name]', chunkNames: `${CHUNK_DIR}/[name]-[hash]`, outExtension: { '.js': '.cjs' },
    });
    mkdirSync(chunkDir, { recursive: true });
    const chunks = readdirSync(path.join(tmp, CHUNK_DIR)).sort();
    // esbuild keeps dynamic import() of a chunk as a native import(), which a single binary resolves against the
    // path its blob was built at (so it works only on the build machine): make it a require() the loader serves.
    const toCjs = async (file) => (await transform(readFileSync(file, 'utf8'), { format: 'cjs', target: 'node20', platform: 'node', charset: 'ascii', logLevel: 'warning', minifyWhitespace: common.minifyWhitespace })).code
      .replace(/\bimport\("(\.\/[^"]+\.cjs)"\)/g, 'Promise.resolve().then(() => require("$1"))')
      // The same for a Node built-in imported on first use (a SEA chunk is a vm function without an import() hook).
      .replace(/\bimport\("(node:[a-z_/]+)"\)/g, 'Promise.resolve().then(() => require("$1"))');
    for (const c of chunks) {
      writeAtomic(path.join(chunkDir, c), latin1Only(await toCjs(path.join(tmp, CHUNK_DIR, c)), `${CHUNK_DIR}/${c}`));
    }
    let main = await toCjs(path.join(tmp, 'main.cjs'));
    main = main.replaceAll(`require("./${CHUNK_DIR}/`, `__p2mRequire("./${CHUNK_DIR}/`);
    // Keep a leading "use strict" / shebang-free header as esbuild wrote it; the loader goes right after it.
    main = main.replace(/^("use strict";\n)?/, (m) => m + LOADER);
    writeAtomic(outfile, latin1Only(main, path.basename(outfile)));
    // The asset list for the single binaries, with the sources each chunk holds (tests and docs read it).
    const inputs = Object.fromEntries(Object.entries(result.metafile.outputs).map(([file, o]) => [
      path.relative(tmp, path.resolve(file)).split(path.sep).join('/'),
      Object.keys(o.inputs).map((i) => i.replace(/^.*node_modules\//, 'node_modules/')),
    ]));
    const index = Object.fromEntries(chunks.map((c) => [`${CHUNK_DIR}/${c}`, inputs[`${CHUNK_DIR}/${c}`] ?? []]));
    writeAtomic(path.join(chunkDir, 'index.json'), JSON.stringify({ main: inputs['main.cjs'] ?? [], chunks: index }, null, 1) + '\n');
    const keep = new Set([...chunks, 'index.json']);
    for (const f of readdirSync(chunkDir)) if (!keep.has(f)) rmSync(path.join(chunkDir, f), { recursive: true, force: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
