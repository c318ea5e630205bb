// The CLI contract: --version, --help per subcommand, check errors with path and line, schema, once exit codes, test-rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli, ROOT, CAMERA_MOTION_RULE } from '../support/lab.js';
import { makeMail } from '../support/maildir.js';
import { makeTestCA } from '../support/certs.js';
import pkg from '../../package.json' with { type: 'json' };

async function tmpDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'p2m-cli-'));
}

const BASE = `mqtt:
  url: mqtt://127.0.0.1:1
mailboxes:
  - id: home
    host: 127.0.0.1
    port: 1
    username: alice
    password: not-a-secret-pw
`;

test('--version prints the package version; --help lists every command', async () => {
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), `pop2mqtt ${pkg.version}`);
  const h = await runCli(['--help']);
  assert.equal(h.code, 0);
  for (const c of ['run', 'once', 'check', 'schema', 'probe', 'test-rule']) assert.match(h.stdout, new RegExp(`\\n  ${c}\\s`));
});

for (const c of ['run', 'once', 'check', 'schema', 'probe', 'test-rule']) {
  test(`${c} --help prints its usage and exits 0`, async () => {
    const r = await runCli([c, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: pop2mqtt ${c}`));
  });
}

test('unknown commands and missing --config are usage errors (exit 2)', async () => {
  assert.equal((await runCli(['frobnicate'])).code, 2);
  const r = await runCli(['check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--config FILE is required/);
});

test('check names the key path and the YAML line of every error, and exits 1', async () => {
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, `${BASE}    schedule: "every minute"
rules:
  - name: ok
    when:
      subject: { contains: "x" }
  - name: broken
    when:
      subject: { regex: "(unclosed" }
`);
    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mailboxes\[0\]\.schedule: .*cron.*\(line 9\)/);
    assert.match(r.stderr, /rules\[1\]\.when\.subject\.regex: .*\(line 16\)/);
    const ok = path.join(dir, 'ok.yaml');
    await writeFile(ok, BASE);
    const r2 = await runCli(['check', '--config', ok]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /OK \(1 mailbox, 0 rules\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('check refuses a state_dir it cannot write and CA files that are missing or not certificates, and leaves no trace', async () => {
  const dir = await tmpDir();
  try {
    const certs = await makeTestCA(path.join(dir, 'tls'));
    await writeFile(path.join(dir, 'junk.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
    await writeFile(path.join(dir, 'notpem.txt'), 'hello\n');
    const cfg = (stateDir: string, mqttCa: string, mbCa: string) => `mqtt:
  url: mqtts://127.0.0.1:1
  ca_file: ${mqttCa}
state_dir: ${stateDir}
mailboxes:
  - id: home
    host: 127.0.0.1
    port: 1
    username: alice
    password: not-a-secret-pw
    ca_file: ${mbCa}
`;
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, cfg('/proc/nope', './missing.pem', './junk.pem'));
    const r = await runCli(['check', '--config', bad]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /state_dir: \/proc\/nope is not a writable directory \(E[A-Z]+\).*\(line 4\)/);
    assert.match(r.stderr, /mqtt\.ca_file: cannot read .*missing\.pem: ENOENT \(line 3\)/);
    assert.match(r.stderr, /mailboxes\[0\]\.ca_file: .*junk\.pem: certificate 1 of 1 does not parse .*\(line 11\)/);

    await writeFile(bad, cfg('./state', './notpem.txt', certs.caFile));
    const r2 = await runCli(['check', '--config', bad]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /mqtt\.ca_file: .*notpem\.txt holds no PEM certificate/);
    assert.doesNotMatch(r2.stderr, /state_dir|mailboxes/);

    // once with that state_dir fails at once, naming the path (Node's recursive mkdir used to hang there forever).
    await writeFile(bad, cfg('/proc/nope', certs.caFile, certs.caFile));
    const once = await runCli(['once', '--config', bad], { timeoutMs: 30_000 });
    assert.notEqual(once.code, 0);
    assert.match(once.stderr, /\/proc\/nope/);

    const good = path.join(dir, 'good.yaml');
    await writeFile(good, cfg('./state/sub', certs.caFile, certs.caFile));
    const r3 = await runCli(['check', '--config', good]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.equal(existsSync(path.join(dir, 'state')), false, 'check removed the state_dir it created to test it');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('schema prints a JSON Schema with the config keys', async () => {
  const r = await runCli(['schema']);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
  for (const k of ['mqtt', 'mailboxes', 'rules', 'state_dir', 'outbox', 'homeassistant']) assert.ok(k in schema.properties, k);
});

test('once exits non-zero with the reason on stderr when a mailbox fails', async () => {
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'c.yaml');
    await writeFile(file, `${BASE}    timeouts: { connect: 2s }\nstate_dir: ./data\n`, { mode: 0o600 });
    const r = await runCli(['once', '--config', file], { timeoutMs: 30_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mailbox home failed: \[ECONNECT\]/);
    assert.doesNotMatch(r.stderr + r.stdout, /not-a-secret-pw/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('test-rule shows conditions, the fetch it would need and the publications; exit 0 on a match, 1 otherwise', async () => {
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'c.yaml');
    await writeFile(file, `${BASE}rules:
${CAMERA_MOTION_RULE}`);
    const hit = path.join(dir, 'hit.eml');
    const miss = path.join(dir, 'miss.eml');
    await writeFile(hit, makeMail({ from: 'nvr@nvr.local', subject: 'ALARM: Motion Camera 2', body: 'x' }));
    await writeFile(miss, makeMail({ from: 'news@shop.example', subject: 'Deals', body: 'x' }));
    const r = await runCli(['test-rule', '--config', file, hit]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /camera-motion/);
    assert.match(r.stdout, /TOP 0|TOP n 0/);
    assert.match(r.stdout, /pop2mqtt\/alerts\/Camera 2/);
    const j = await runCli(['test-rule', '--json', '--config', file, hit, miss]);
    const parsed = JSON.parse(j.stdout) as Array<{ file: string; matched: unknown[] }>;
    assert.equal(parsed.length, 2);
    assert.equal(parsed[0]!.matched.length, 1);
    assert.equal(parsed[1]!.matched.length, 0);
    const m = await runCli(['test-rule', '--config', file, miss]);
    assert.equal(m.code, 1);
    const e = await runCli(['test-rule', '--config', file, path.join(dir, 'nope.eml')]);
    assert.equal(e.code, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('test-rule works offline without the mailbox or broker password set; a rule secret must still be there', async () => {
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'c.yaml');
    const env = { ...process.env };
    for (const k of ['POP3_PASSWORD', 'MQTT_PASSWORD', 'GARAGE_TOKEN']) delete env[k];
    await writeFile(file, `mqtt:
  url: mqtt://127.0.0.1:1
  username: agent
  password: \${MQTT_PASSWORD}
mailboxes:
  - id: home
    host: 127.0.0.1
    port: 1
    username: alice
    password: \${POP3_PASSWORD}
  - id: other
    host: 127.0.0.1
    port: 1
    username: bob
    password_file: ./root-only-password
rules:
${CAMERA_MOTION_RULE}`);
    const hit = path.join(dir, 'hit.eml');
    await writeFile(hit, makeMail({ from: 'nvr@nvr.local', subject: 'ALARM: Motion Camera 2', body: 'x' }));
    const r = await runCli(['test-rule', '--config', file, hit], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pop2mqtt\/alerts\/Camera 2/);
    assert.doesNotMatch(r.stdout + r.stderr, /unset-offline/);
    // check (and run, once, probe) still insist on every credential
    const c = await runCli(['check', '--config', file], { env });
    assert.equal(c.code, 1);
    assert.match(c.stderr, /environment variable POP3_PASSWORD is not set/);
    assert.match(c.stderr, /environment variable MQTT_PASSWORD is not set/);
    // a rule's own secret is needed to evaluate the rule: still an error offline
    await writeFile(file, `${BASE}rules:
  - name: cmd
    when:
      shared_secret: { secret: "\${GARAGE_TOKEN}" }
`);
    const s = await runCli(['test-rule', '--config', file, hit], { env });
    assert.equal(s.code, 2);
    assert.match(s.stderr, /rules\[0\]\.when\.shared_secret\.secret: environment variable GARAGE_TOKEN is not set/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('check refuses an action rule whose from is not pinned (contains accepts me@example.com.evil.example)', async () => {
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'c.yaml');
    const rule = (from: string) => `${BASE}trusted_authserv_ids: [mx.home.arpa]
rules:
  - name: garage
    action: true
    when:
      authenticated: true
      from: ${from}
    publish: { topic: "command/garage", payload: "open" }
`;
    await writeFile(file, rule('{ contains: "me@example.com" }'));
    const bad = await runCli(['check', '--config', file]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /rules\[0\]\.when\.from: action: true needs the sender pinned .*me@example\.com\.evil\.example.*\(line 15\)/);
    await writeFile(file, rule('{ address: { is: "me@example.com" } }'));
    const good = await runCli(['check', '--config', file]);
    assert.doesNotMatch(good.stderr, /rules\[0\]/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('npx pop2mqtt works from the checkout (package bin)', async () => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('npx', ['--no-install', 'pop2mqtt', '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^pop2mqtt \d+\.\d+\.\d+/);
});
