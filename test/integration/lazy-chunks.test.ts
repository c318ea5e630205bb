// The bundle loads code on demand: an idle `once` evaluates no MIME decoder or parser chunk; a poll with new mail does; Home Assistant code only with discovery; mqtt's ws transport still works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startLab, minimalConfig, runNode, USER, ROOT, type Lab } from '../support/lab.js';
import { makeMail } from '../support/maildir.js';
import { subscribe } from '../support/mqtt-subscriber.js';

const BUNDLE = path.join(ROOT, 'dist', 'pop2mqtt.cjs');
const CHUNKS = path.join(ROOT, 'dist', 'pop2mqtt-chunks');
/**
 * Code an idle poll must not load (libmime's charset tables, the MIME parser, HTML to text; SASLprep: no SCRAM here;
 * the OAuth client: no `oauth:` here; node-cron: only a daemon schedules, `once` checks `schedule:` with
 * src/config/cron-expression.ts; mqtt.js's WebSocket and SOCKS transports and browser timers: mqtt:// here).
 */
const LAZY = ['node_modules/libmime/', 'node_modules/encoding-japanese/', 'node_modules/mailparser/', 'node_modules/html-to-text/', 'node_modules/htmlparser2/', 'node_modules/@mongodb-js/saslprep/', 'src/oauth/', 'node_modules/node-cron/',
  'node_modules/ws/', 'node_modules/socks/', 'node_modules/ip-address/', 'node_modules/smart-buffer/', 'node_modules/worker-timers/', 'node_modules/@babel/runtime/'];
/**
 * Node built-ins an idle poll must not evaluate: http/https only for an OAuth token request, child_process (node-cron's)
 * only in a daemon, tty only for debug's loggers with $DEBUG set, perf_hooks only if an lru-cache entry has a TTL, vm
 * only for src/body-gc.ts's first collection (after downloads).
 */
const LAZY_BUILTINS = ['http', 'https', 'child_process', 'tty', 'perf_hooks', 'vm'];

let lab: Lab;
let preload: string;
let index: { chunks: Record<string, string[]> };
before(async () => {
  lab = await startLab({ mosquitto: { websockets: true } });
  index = JSON.parse(await readFile(path.join(CHUNKS, 'index.json'), 'utf8'));
  // Preloaded into the CLI: at exit, the chunk files it required (from require.cache) and the Node built-ins evaluated
  // since the preload (process.moduleLoadList) go to the file $P2M_LOADED_OUT.
  preload = path.join(lab.dir, 'loaded-chunks.cjs');
  await writeFile(preload, `'use strict';
const before = new Set(process.moduleLoadList);
process.on('exit', () => {
  const dir = ${JSON.stringify(CHUNKS + path.sep)};
  const chunks = Object.keys(require.cache).filter((f) => f.startsWith(dir)).map((f) => 'pop2mqtt-chunks/' + f.slice(dir.length));
  const builtins = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
  require('node:fs').writeFileSync(process.env.P2M_LOADED_OUT, JSON.stringify({ chunks, builtins }));
});
`);
});
after(() => lab?.stop());

/** Runs `once` on the bundle; returns the sources (package paths) of every chunk the process evaluated. */
async function onceLoads(config: string, name: string): Promise<string[]> {
  return (await onceLoadsAll(config, name)).sources;
}

/** Runs `once` on the bundle; returns the sources of every chunk it evaluated and the Node built-ins it loaded. */
async function onceLoadsAll(config: string, name: string): Promise<{ sources: string[]; builtins: string[] }> {
  const out = path.join(lab.dir, `${name}.json`);
  const r = await runNode(['--require', preload, BUNDLE, 'once', '--config', config], { env: { ...lab.env, P2M_LOADED_OUT: out }, cwd: lab.dir, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const loaded: { chunks: string[]; builtins: string[] } = JSON.parse(await readFile(out, 'utf8'));
  assert.ok(loaded.chunks.length > 0, 'the bundle is split into chunks and the command loaded some');
  assert.ok(loaded.builtins.includes('tls'), 'built-ins are recorded (the POP3 client loaded tls)');
  const sources = loaded.chunks.flatMap((c) => {
    assert.ok(index.chunks[c], `${c} is listed in index.json`);
    return index.chunks[c]!;
  });
  return { sources, builtins: loaded.builtins };
}

test('an idle once does not load the MIME decoder, the MIME parser or HTML-to-text; a poll with new mail loads the decoder', async () => {
  await lab.dovecot.deliver(USER, makeMail({ from: '=?UTF-8?B?w4RsYXJt?= <nvr@nvr.local>', to: 'alice@home.example', subject: 'ALARM: Motion Detected Camera 1', messageId: '<lazy-1@nvr.local>', body: 'motion\r\n' }));
  const config = await lab.writeConfig(minimalConfig(lab, { existing: 'process', extra: 'log_level: warn\n' }), 'lazy.yaml');

  const first = await onceLoads(config, 'first');
  assert.ok(first.some((s) => s.startsWith('node_modules/libmime/')), 'new mail: the RFC 2047 decoder was loaded');

  const { sources: idle, builtins } = await onceLoadsAll(config, 'idle');
  for (const pkg of LAZY) assert.ok(!idle.some((s) => s.startsWith(pkg)), `idle poll loaded ${pkg}`);
  assert.ok(idle.some((s) => s.startsWith('node_modules/mqtt/')), 'the idle poll did load what it uses (the MQTT client)');
  for (const m of LAZY_BUILTINS) assert.ok(!builtins.includes(m), `idle poll loaded node:${m}`);
});

test('a snapshot rule (RETR, attachment published) loads the MIME parser but not HTML-to-text; a message with only HTML loads HTML-to-text and its text matches', async () => {
  const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/alerts/#', 'pop2mqtt/snapshots/#']);
  try {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(3000, 7), Buffer.from([0xff, 0xd9])]);
    await lab.dovecot.deliver(USER, makeMail({ from: 'NVR <nvr@nvr.local>', to: 'alice@home.example', subject: 'ALARM: Motion Detected Camera 5', messageId: '<lazy-snap@nvr.local>', body: 'motion\r\n',
      attachments: [{ filename: 'snap.jpg', contentType: 'image/jpeg', content: jpeg }] }));
    const rules = `  - name: snapshot
    when:
      subject: { regex: "Camera 5" }
      attachment: { type: "image/*" }
    publish: { topic: "alerts/snap" }
    attachments: { topic: "snapshots/cam5", types: ["image/*"] }
`;
    const snap = await lab.writeConfig(minimalConfig(lab, { existing: 'process', stateDir: './data-snap', rules, extra: 'log_level: warn\n' }), 'snap.yaml');
    const loaded = await onceLoads(snap, 'snap');
    assert.ok(loaded.some((x) => x.startsWith('node_modules/mailparser/')), 'the MIME parser was loaded');
    for (const pkg of ['node_modules/html-to-text/', 'node_modules/htmlparser2/', 'node_modules/entities/']) {
      assert.ok(!loaded.some((x) => x.startsWith(pkg)), `a snapshot rule loaded ${pkg}`);
    }
    const image = await sub.waitFor((m) => m.topic === 'pop2mqtt/snapshots/cam5', 30_000);
    assert.deepEqual(image.payload, jpeg);

    const html = '<html><body><table><tr><td>Alarm <b>zone&nbsp;4</b> tripped</td></tr></table></body></html>';
    const b64 = Buffer.from(html).toString('base64');
    await lab.dovecot.deliver(USER, ['From: Panel <panel@panel.local>', 'To: alice@home.example', 'Subject: HTML only', 'Date: Thu, 03 Dec 2026 10:00:00 +0000',
      'Message-ID: <lazy-html@panel.local>', 'MIME-Version: 1.0', 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: base64', '', b64, ''].join('\r\n'));
    const htmlRules = `  - name: html-body
    when:
      subject: { is: "HTML only" }
      body: { regex: "Alarm zone 4 tripped" }
    publish: { topic: "alerts/html" }
`;
    const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'process', stateDir: './data-html', rules: htmlRules, extra: 'log_level: warn\n' }), 'html.yaml');
    assert.ok((await onceLoads(cfg, 'html')).some((x) => x.startsWith('node_modules/html-to-text/')), 'HTML-to-text was loaded for the HTML body');
    await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/html', 30_000);
  } finally {
    await sub.close();
  }
});

test("mqtt.js's debug output still appears with DEBUG set (its debug module is a silent stand-in only without it)", async () => {
  const config = await lab.writeConfig(minimalConfig(lab, { stateDir: './data-debug', extra: 'log_level: warn\n' }), 'debug.yaml');
  const r = await runNode([BUNDLE, 'once', '--config', config], { env: { ...lab.env, DEBUG: 'mqttjs:client' }, cwd: lab.dir, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /mqttjs:client .*connect/, 'debug printed mqtt.js client lines');
  const quiet = await runNode([BUNDLE, 'once', '--config', config], { env: { ...lab.env, DEBUG: '' }, cwd: lab.dir, timeoutMs: 120_000 });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /mqttjs/);
});

test('the Home Assistant extension is read only with homeassistant.discovery on', async () => {
  const off = await lab.writeConfig(minimalConfig(lab, { stateDir: './data-ha-off', extra: 'log_level: warn\n' }), 'ha-off.yaml');
  const loadedOff = await onceLoads(off, 'ha-off');
  assert.ok(!loadedOff.some((s) => s.startsWith('src/homeassistant/')), 'discovery off: no Home Assistant code evaluated');
  const on = await lab.writeConfig(minimalConfig(lab, { stateDir: './data-ha-on', extra: 'log_level: warn\nhomeassistant:\n  discovery: true\n' }), 'ha-on.yaml');
  assert.ok((await onceLoads(on, 'ha-on')).includes('src/homeassistant/extension.ts'), 'discovery on: the extension chunk was loaded');
});

test('mqtt over ws:// works from the bundle (its WebSocket transport is a file of its own, read only when used)', async () => {
  const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/alerts/#']);
  try {
    await lab.dovecot.deliver(USER, makeMail({ from: 'NVR <nvr@nvr.local>', to: 'alice@home.example', subject: 'ALARM: Motion Detected Camera 7', messageId: '<lazy-ws@nvr.local>', body: 'motion\r\n' }));
    const yaml = minimalConfig(lab, { existing: 'process', stateDir: './data-ws', extra: 'log_level: warn\n' }).replace(`url: ${lab.mosquitto.url}`, `url: ${lab.mosquitto.wsUrl}`);
    assert.ok(yaml.includes(`url: ${lab.mosquitto.wsUrl}`));
    const config = await lab.writeConfig(yaml, 'ws.yaml');
    const loaded = await onceLoads(config, 'ws');
    assert.ok(loaded.some((x) => x.startsWith('node_modules/ws/')), 'ws was loaded');
    const m = await sub.waitFor((x) => x.payload.toString().includes('Camera 7'), 30_000);
    assert.match(m.topic, /^pop2mqtt\/alerts\//);
  } finally {
    await sub.close();
  }
});

test("the files of lazily required modules (mqtt.js's, the MIME parser's) export what their stand-ins call", async () => {
  const files: Record<string, string[]> = {
    'mqtt-ws': ['streamBuilder', 'browserStreamBuilder'], 'mqtt-socks': ['default'], 'mqtt-worker-timers': ['setInterval', 'clearInterval'],
    'mailparser-html-to-text': ['htmlToText'],
  };
  for (const [file, names] of Object.entries(files)) {
    const code = `const m = require(${JSON.stringify(path.join(CHUNKS, `${file}.cjs`))}).default; process.stdout.write(JSON.stringify(${JSON.stringify(names)}.map((n) => typeof m[n])));`;
    const r = await runNode(['-e', code], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), names.map(() => 'function'), file);
  }
});

test('chunks and built-ins imported on first use are loaded with require() only: an import() would make a single binary read chunks from its build directory, and fails in its vm-compiled chunks', async () => {
  const files = [BUNDLE, ...(await readdir(CHUNKS)).filter((f) => f.endsWith('.cjs')).map((f) => path.join(CHUNKS, f))];
  assert.ok(files.length > 10);
  for (const f of files) assert.doesNotMatch(await readFile(f, 'utf8'), /\bimport\("(\.\/|node:)/, `${path.basename(f)} imports a chunk or a built-in with import()`);
  assert.match(await readFile(BUNDLE, 'utf8'), /__p2mRequire\("\.\/pop2mqtt-chunks\/once-/, 'commands load through the chunk loader');
});

test('a rebuild never leaves a chunk missing: files are renamed over their place, stale chunks removed only at the end', async () => {
  const out = path.join(lab.dir, 'rebuild', 'pop2mqtt.cjs');
  const build = () => runNode([path.join(ROOT, 'scripts', 'build-bundle.mjs'), '--outfile', out], { timeoutMs: 120_000 });
  assert.equal((await build()).code, 0);
  const dir = path.join(path.dirname(out), 'pop2mqtt-chunks');
  const first = (await readdir(dir)).sort();
  await writeFile(path.join(dir, 'stale-OLD.cjs'), '');
  // While the second build runs, every file of the first must exist at every look (a process started from the
  // first build may still require() any of them).
  const running = build();
  let done = false;
  void running.then(() => { done = true; });
  let missing: string[] = [];
  let looks = 0;
  while (!done && missing.length === 0) {
    const now = new Set(await readdir(dir).catch(() => [] as string[]));
    missing = first.filter((f) => !now.has(f));
    looks++;
  }
  assert.equal((await running).code, 0);
  assert.deepEqual(missing, [], `missing during the rebuild (look ${looks})`);
  assert.ok(looks > 1, 'looked while the build ran');
  assert.deepEqual((await readdir(dir)).sort(), first, 'same chunks, the stale one removed');
});

test('a second bundle built into a directory that holds one is refused (it would remove the first one\'s chunks)', async () => {
  const dir = path.join(lab.dir, 'two-bundles');
  await mkdir(dir, { recursive: true });
  await copyFile(BUNDLE, path.join(dir, 'first.cjs'));
  const r = await runNode([path.join(ROOT, 'scripts', 'build-bundle.mjs'), '--outfile', path.join(dir, 'second.cjs')], { timeoutMs: 120_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /first\.cjs is another bundle using .*pop2mqtt-chunks; build each bundle into its own directory/);
  assert.deepEqual((await readdir(dir)).sort(), ['first.cjs'], 'nothing written');
});
