// No secret ever leaves the agent and masking never corrupts: every CLI scenario (check, probe, once ok/failing, run at debug, test-rule, config errors) with unique POP3, MQTT and OAuth secrets, checking stdout, stderr, state files and every MQTT message for them, raw and base64; common-word passwords leave discovery, status, errors and topics intact; a command token reaches no topic and no payload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTestCA, type TestCerts } from '../support/certs.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { makeMail } from '../support/maildir.js';
import { serveMailbox, startHostilePop3, tlsMaterial, type HostileServer } from '../support/hostile-pop3.js';
import { popBearerAuth, startTokenServer, type BearerAttempt, type TokenServer } from '../support/token-server.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { PASS, USER, runCli, startDaemon, startLab, until, type CliResult, type Lab, CAMERA_MOTION_RULE } from '../support/lab.js';

const MQTT_USER = 'p2m-agent';
const MQTT_PASS = 'mqtt-Leak-Unique-pw-5f3e2d1c';
const OBSERVER_PASS = 'observer-Leak-Unique-pw-0a9b';
const CLIENT_SECRET = 'oauth-Leak-Unique-cs-77e1d2';
const REFRESH = 'oauth-Leak-Unique-rt-c0ffee42';
const WRONG_POP3_PASS = 'wrong-Leak-Unique-pw-31337x';
const WRONG_MQTT_PASS = 'wrong-Leak-Unique-mqtt-8a8a8';
const LITERAL_PASS = 'literal-Leak-Unique-pw-9d9d';
const LITERAL_MQTT_PASS = 'literal-Leak-Unique-mqtt-4c4c';
const OAUTH_USER = 'alice@example.com';

let lab: Lab;
let wordPop: DovecotServer;
let certs: TestCerts;
let ts: TokenServer;
let peer: HostileServer;
let observer: Subscriber;
const attempts: BearerAttempt[] = [];
/** Passwords that are common words, and strings of our own structure (the base topic, JSON true, HA's "online"). */
const WORDS = ['online', 'secret', 'home', 'pop2mqtt', 'true'] as const;
const WORD_MQTT_USER = 'p2m-words';
const COMMAND_TOKEN = 'Gq7-Zt2v-Kp9x-Wm4c';
/** Everything the agent wrote, per scenario. */
const outputs: Array<{ name: string; text: string }> = [];

const alarm = (cam: number, id: string) =>
  `From: NVR <nvr@nvr.local>\r\nTo: alice@home.example\r\nSubject: ALARM: Motion Detected Camera ${cam}\r\nMessage-ID: <${id}@nvr.local>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nmotion\r\n`;

/** Every secret known to the test, including tokens issued so far. */
function secrets(): string[] {
  return [PASS, MQTT_PASS, OBSERVER_PASS, CLIENT_SECRET, REFRESH, WRONG_POP3_PASS, WRONG_MQTT_PASS, LITERAL_PASS, LITERAL_MQTT_PASS, ...ts.issued, ...ts.rotatedRefreshTokens];
}

/** The base64 forms a secret can take inside a longer base64 text (each of the three alignments), and the SASL responses carrying it. */
function needles(secret: string): string[] {
  const s = Buffer.from(secret, 'utf8');
  const out = [secret];
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k, 0x41), s]).toString('base64');
    const skip = k === 0 ? 0 : 4;
    const usable = k === 0 ? s.length : s.length - (3 - k);
    out.push(b64.slice(skip, skip + Math.floor(usable / 3) * 4));
  }
  out.push(Buffer.from(`\0${USER}\0${secret}`).toString('base64'));
  out.push(Buffer.from(`user=${OAUTH_USER}\x01auth=Bearer ${secret}\x01\x01`).toString('base64'));
  return out.filter((n) => n.length >= 8);
}

function findLeaks(text: string): string[] {
  const found: string[] = [];
  for (const s of secrets()) for (const n of needles(s)) if (text.includes(n)) found.push(`${s.slice(0, 12)}… as ${n === s ? 'raw text' : `"${n.slice(0, 16)}…"`}`);
  return found;
}

function record(name: string, r: CliResult | string): void {
  outputs.push({ name, text: typeof r === 'string' ? r : `${r.stdout}\n${r.stderr}` });
}

let cfgN = 0;
async function config(o: { stateDir: string; schedule?: string } ): Promise<string> {
  await writeFile(path.join(lab.dir, 'refresh_token'), REFRESH + '\n', { mode: 0o600 });
  return lab.writeConfig(`mqtt:
  url: ${lab.mosquitto.url}
  username: ${MQTT_USER}
  password: \${MQTT_PASSWORD}
  base_topic: pop2mqtt
homeassistant:
  discovery: true
state_dir: ${o.stateDir}
log_level: debug
mailboxes:
  - id: home
    host: 127.0.0.1
    port: ${lab.dovecot.tlsPort}
    tls: implicit
    ca_file: ${lab.dovecot.caFile}
    username: ${USER}
    password: \${POP3_PASSWORD}
    schedule: "${o.schedule ?? '0 0 1 1 *'}"
    existing: process
  - id: gmail
    host: 127.0.0.1
    port: ${peer.port}
    tls: implicit
    ca_file: ${certs.caFile}
    username: ${OAUTH_USER}
    auth: xoauth2
    oauth:
      token_url: ${ts.url}
      client_id: leak-client.apps.example
      client_secret: \${OAUTH_CLIENT_SECRET}
      refresh_token_file: ./refresh_token
    schedule: "${o.schedule ?? '0 0 1 1 *'}"
    existing: process
rules:
${CAMERA_MOTION_RULE}`, `leak-${++cfgN}.yaml`);
}

function env(over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env, POP3_PASSWORD: PASS, MQTT_PASSWORD: MQTT_PASS, OAUTH_CLIENT_SECRET: CLIENT_SECRET,
    NODE_EXTRA_CA_CERTS: certs.caFile, POP2MQTT_LOG_LEVEL: 'debug', ...over,
  };
}

const cli = (args: string[], e: NodeJS.ProcessEnv = env()) => runCli(args, { env: e, cwd: lab.dir, timeoutMs: 90_000 });

before(async () => {
  lab = await startLab({ mosquitto: { users: [{ user: MQTT_USER, pass: MQTT_PASS }, { user: 'observer', pass: OBSERVER_PASS }, { user: WORD_MQTT_USER, pass: 'online' }] } });
  wordPop = await startDovecot({ users: WORDS.map((w) => ({ user: `w-${w}`, pass: w })) });
  certs = await makeTestCA(path.join(lab.dir, 'tls'));
  ts = await startTokenServer({ certs, clientId: 'leak-client.apps.example', clientSecret: CLIENT_SECRET, refreshToken: REFRESH, rotate: 'keep-old', accessTokenPrefix: 'at-Leak-Unique' });
  const msgs = [Buffer.from(alarm(8, 'leak-oauth'))];
  peer = await startHostilePop3(
    (c) => serveMailbox(c, {
      capa: ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL XOAUTH2'],
      capaAfterLogin: ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'],
      messages: msgs, uids: ['leak-u1'],
      handle: popBearerAuth(ts, { user: OAUTH_USER, attempts }),
    }).then(() => undefined),
    { implicitTls: tlsMaterial(certs) },
  );
  observer = await subscribe(lab.mosquitto.url, ['#'], { username: 'observer', password: OBSERVER_PASS });
  await lab.dovecot.deliver(USER, alarm(3, 'leak-pop3'));
});

after(async () => {
  await observer?.close();
  await wordPop?.stop();
  await peer?.close();
  await ts?.close();
  await lab?.stop();
});

test('check', { timeout: 60_000 }, async () => {
  const r = await cli(['check', '--config', await config({ stateDir: './state-check' })]);
  record('check', r);
  assert.equal(r.code, 0, r.stderr + r.stdout);
});

test('probe (text and JSON)', { timeout: 90_000 }, async () => {
  const cfg = await config({ stateDir: './state-probe' });
  const r = await cli(['probe', '--config', cfg]);
  record('probe', r);
  assert.match(r.stdout + r.stderr, /home/);
  const j = await cli(['probe', '--config', cfg, '--json']);
  record('probe --json', j);
});

test('once: both mailboxes succeed', { timeout: 90_000 }, async () => {
  const r = await cli(['once', '--config', await config({ stateDir: './state-once' })]);
  record('once ok', r);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(attempts.some((a) => a.ok), 'the OAuth mailbox logged in');
  await observer.waitForCount(2, 10_000, (m) => m.topic.startsWith('pop2mqtt/alerts/'));
});

test('once: wrong POP3 password', { timeout: 90_000 }, async () => {
  const r = await cli(['once', '--config', await config({ stateDir: './state-wrongpw' })], env({ POP3_PASSWORD: WRONG_POP3_PASS }));
  record('once wrong POP3 password', r);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /mailbox home failed: \[EAUTH\]/);
});

test('once: wrong MQTT password', { timeout: 90_000 }, async () => {
  const r = await cli(['once', '--config', await config({ stateDir: './state-wrongmqtt' })], env({ MQTT_PASSWORD: WRONG_MQTT_PASS }));
  record('once wrong MQTT password', r);
  assert.notEqual(r.code, 0);
});

test('once: the token endpoint refuses the refresh token (the error text of the endpoint echoes it)', { timeout: 90_000 }, async () => {
  ts.script({ status: 400, json: { error: 'invalid_grant', error_description: `refresh token ${REFRESH} revoked for client secret ${CLIENT_SECRET}` } });
  const r = await cli(['once', '--config', await config({ stateDir: './state-grant' })]);
  record('once invalid_grant', r);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /EOAUTH_GRANT/);
});

test('run at debug level for a few polls, then SIGTERM', { timeout: 120_000 }, async () => {
  const cfg = await config({ stateDir: './state-run', schedule: '* * * * * *' });
  await lab.dovecot.deliver(USER, alarm(4, 'leak-run'));
  const okBefore = attempts.filter((a) => a.ok).length;
  const d = startDaemon(['run', '--config', cfg], { env: env(), cwd: lab.dir });
  try {
    await until(() => (d.output().match(/\[home\] poll /g) ?? []).length >= 3 && attempts.filter((a) => a.ok).length >= okBefore + 3, 45_000, 'three polls of each mailbox');
    // A revoked access token mid-run: refused login, refresh, retry (all at debug level).
    ts.revokeAccessTokens();
    const okNow = attempts.filter((a) => a.ok).length;
    await until(() => attempts.filter((a) => a.ok).length >= okNow + 1, 30_000, 'a poll after the revocation');
  } finally {
    d.child.kill('SIGTERM');
    const exit = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    if (exit === null) d.child.kill('SIGKILL');
  }
  record('run', d.output());
  assert.match(d.output(), /DEBUG/);
  assert.match(d.output(), /retrying once with a fresh access token/);
});

test('test-rule (text and JSON)', { timeout: 60_000 }, async () => {
  const cfg = await config({ stateDir: './state-testrule' });
  const eml = path.join(lab.dir, 'alarm.eml');
  await writeFile(eml, alarm(5, 'leak-eml'));
  const r = await cli(['test-rule', '--config', cfg, eml]);
  record('test-rule', r);
  assert.equal(r.code, 0, r.stderr);
  const j = await cli(['test-rule', '--config', cfg, '--json', eml]);
  record('test-rule --json', j);
  assert.equal(j.code, 0, j.stderr);
});

test('config errors next to secrets', { timeout: 90_000 }, async () => {
  const base = (mailboxLines: string, mqttPassword = LITERAL_MQTT_PASS) => `mqtt:
  url: ${lab.mosquitto.url}
  username: ${MQTT_USER}
  password: "${mqttPassword}"
mailboxes:
  - id: home
    host: 127.0.0.1
${mailboxLines}
`;
  const cases: Record<string, string> = {
    'invalid port under the password': base(`    username: ${USER}\n    password: "${LITERAL_PASS}"\n    port: seventy`),
    'YAML syntax error next to the password': base(`    username: ${USER}\n    password: "${LITERAL_PASS}"\n    port: [995\n    tls: implicit`),
    'misspelled password key': base(`    username: ${USER}\n    passwrd: "${LITERAL_PASS}"`),
    'password of the wrong type next to the MQTT password': base(`    username: ${USER}\n    password: ["${LITERAL_PASS}"]`),
    'OAuth secrets with a bad token_url': base(`    username: ${USER}\n    auth: xoauth2\n    oauth:\n      token_url: "not a url ${REFRESH}"\n      client_id: x\n      client_secret: "${CLIENT_SECRET}"\n      refresh_token: "${REFRESH}"`),
    'broker URL with credentials in it': `mqtt:\n  url: "mqtt://${MQTT_USER}:${LITERAL_MQTT_PASS}@127.0.0.1:bad/"\nmailboxes:\n  - id: home\n    host: 127.0.0.1\n    username: ${USER}\n    password: "${LITERAL_PASS}"\n`,
  };
  for (const [name, yaml] of Object.entries(cases)) {
    const file = await lab.writeConfig(yaml, `bad-${Object.keys(cases).indexOf(name)}.yaml`);
    for (const cmd of ['check', 'once', 'run']) {
      const r = await cli([cmd, '--config', file]);
      record(`${cmd}: ${name}`, r);
      assert.notEqual(r.code, 0, `${cmd} accepted the broken config "${name}"`);
      assert.ok((r.stdout + r.stderr).trim().length > 0, `${cmd} explained nothing for "${name}"`);
    }
  }
});

test('no secret in any output of any scenario', () => {
  // The detector itself finds a secret raw, inside base64 at every alignment, and inside a SASL response.
  for (const pre of ['', 'a', 'ab']) assert.ok(findLeaks(`x ${Buffer.from(pre + REFRESH + 'tail').toString('base64')} y`).length > 0, `alignment ${pre.length}`);
  assert.ok(findLeaks(Buffer.from(`\0${USER}\0${PASS}`).toString('base64')).length > 0);
  assert.ok(findLeaks(`token ${ts.issued[0]}`).length > 0);
  assert.ok(outputs.length >= 12, `scenarios ran: ${outputs.map((o) => o.name).join(', ')}`);
  const leaks = outputs.flatMap((o) => findLeaks(o.text).map((l) => `${o.name}: ${l}`));
  assert.deepEqual(leaks, []);
});

test('no secret in any MQTT message (topics and payloads, every topic, as a privileged subscriber)', () => {
  const msgs = observer.messages;
  assert.ok(msgs.some((m) => m.topic === 'pop2mqtt/bridge/state'), 'bridge state seen');
  assert.ok(msgs.some((m) => m.topic.startsWith('homeassistant/')), 'discovery seen');
  assert.ok(msgs.filter((m) => m.topic.startsWith('pop2mqtt/alerts/')).length >= 2, 'alerts seen');
  const leaks = msgs.flatMap((m) => findLeaks(`${m.topic}\n${m.payload.toString('latin1')}\n${m.text}`).map((l) => `${m.topic}: ${l}`));
  assert.deepEqual(leaks, []);
});

test('no secret in the state directories, except the rotated refresh token in <mailbox>.oauth.json (mode 0600)', async () => {
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  for (const e of await readdir(lab.dir)) if (e.startsWith('state-')) await walk(path.join(lab.dir, e));
  assert.ok(files.length > 0);
  const leaks: string[] = [];
  for (const f of files) {
    const text = (await readFile(f)).toString('latin1');
    if (f.endsWith('.oauth.json')) {
      assert.equal((await stat(f)).mode & 0o777, 0o600, f);
      const own = (JSON.parse(text) as { refresh_token: string }).refresh_token;
      for (const l of findLeaks(text.split(own).join(''))) leaks.push(`${f}: ${l}`);
      continue;
    }
    for (const l of findLeaks(text)) leaks.push(`${f}: ${l}`);
  }
  assert.deepEqual(leaks, []);
});

// ------------------------------------------------------------------ masking never corrupts; command tokens never published

/** One agent, five mailboxes whose POP3 passwords are the common words (each registered as a secret), MQTT password "online". */
function wordConfig(sharedSecret = '${GARAGE_TOKEN}'): string {
  return `mqtt:
  url: ${lab.mosquitto.url}
  username: ${WORD_MQTT_USER}
  password: \${WORD_MQTT_PASSWORD}
  base_topic: pop2mqtt
homeassistant:
  discovery: true
state_dir: ./state-words
log_level: debug
mailboxes:
${WORDS.map((w) => `  - id: ${w === 'home' ? 'home' : `mb-${w}`}
    host: 127.0.0.1
    port: ${wordPop.tlsPort}
    tls: implicit
    ca_file: ${wordPop.caFile}
    username: w-${w}
    password: \${PW_${w.toUpperCase()}}
    schedule: "0 0 1 1 *"
    existing: process
`).join('')}rules:
  - name: garage
    action: true
    when:
      from: { address: { is: "owner@home.example" } }
      shared_secret: { secret: "${sharedSecret}" }
      subject: { contains: "open garage" }
    publish:
      - { topic: "garage/cmd" }
      - { topic: "garage/by-subject/{{subject}}", payload: "{{subject}}", properties: { subject: "{{subject}}" } }
    attachments: { topic: "garage/note", types: ["text/*"] }
`;
}

const wordEnv = (): NodeJS.ProcessEnv => ({
  ...process.env, WORD_MQTT_PASSWORD: 'online', GARAGE_TOKEN: COMMAND_TOKEN, POP2MQTT_LOG_LEVEL: 'debug',
  ...Object.fromEntries(WORDS.map((w) => [`PW_${w.toUpperCase()}`, w])),
});

test('common-word passwords leave discovery, status, errors and topics intact; a command mail puts its token on no topic and in no payload (subscribed to #)', { timeout: 180_000 }, async () => {
  const all = await subscribe(lab.mosquitto.url, ['#'], { username: 'observer', password: OBSERVER_PASS });
  try {
    // The token sits in the Subject (where shared_secret looks) right across the 255-character cut of the HA event,
    // in the body, and in a text attachment published as raw bytes.
    const subject = `${'x'.repeat(240)} open garage ${COMMAND_TOKEN}`;
    await wordPop.deliver('w-home', makeMail({
      from: 'Owner <owner@home.example>', subject, body: `token again: ${COMMAND_TOKEN}\r\n`,
      attachments: [{ filename: 'note.txt', contentType: 'text/plain', content: Buffer.from(`the token is ${COMMAND_TOKEN}\n`) }],
    }));
    const cfg = await lab.writeConfig(wordConfig(), 'words.yaml');
    const d = startDaemon(['run', '--config', cfg], { env: wordEnv(), cwd: lab.dir });
    try {
      await until(() => /pop2mqtt started/.test(d.output()) || d.child.exitCode !== null, 30_000, `pop2mqtt started\n${d.output()}`);
      const ask = async (cmd: string, payload: string | Buffer, tx: string) => {
        await all.client.publishAsync(`pop2mqtt/bridge/request/${cmd}`, payload, { qos: 1 });
        const m = await all.waitFor((x) => x.topic === `pop2mqtt/bridge/response/${cmd}` && (typeof payload !== 'string' || (x.json as { transaction?: string })?.transaction === tx), 60_000);
        return m.json as { status: string; data: any; error?: string };
      };
      const polled = await ask('poll', JSON.stringify({ transaction: 'p1' }), 'p1');
      assert.equal(polled.status, 'ok', JSON.stringify(polled));
      assert.deepEqual(polled.data.map((s: { ok: boolean }) => s.ok), WORDS.map(() => true), JSON.stringify(polled.data));
      await all.waitFor((m) => m.topic === 'pop2mqtt/rule/garage/event', 30_000);
      await all.waitFor((m) => m.topic === 'pop2mqtt/garage/cmd', 30_000);
      await all.waitFor((m) => m.topic === 'pop2mqtt/garage/note', 30_000);
      // test_rule runs the same mail through the rules and answers with every publication it would make.
      const explained = await ask('test_rule', Buffer.from(makeMail({ from: 'owner@home.example', subject: `open garage ${COMMAND_TOKEN}` })), '');
      assert.equal(explained.status, 'ok', JSON.stringify(explained));
      // A reload with a too-short token is refused; the error names the key path in our words, unmasked.
      await writeFile(cfg, wordConfig('short'));
      const reload = await ask('reload', JSON.stringify({ transaction: 'r1' }), 'r1');
      assert.equal(reload.status, 'error');
      assert.match(reload.error!, /rules\[0\]\.when\.shared_secret\.secret: a shared secret must be at least 12 characters/);
      await ask('poll', JSON.stringify({ mailbox: 'nope', transaction: 'p2' }), 'p2').then((r) => assert.equal(r.error, 'unknown mailbox "nope"'));
      await until(() => WORDS.every((w) => all.messages.some((m) => m.topic === `pop2mqtt/${w === 'home' ? 'home' : `mb-${w}`}/status` && (m.json as { last_poll?: unknown })?.last_poll)), 30_000, 'a status per mailbox');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- agent output:\n${d.output()}`);
    } finally {
      d.child.kill('SIGTERM');
      const exit = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
      if (exit === null) d.child.kill('SIGKILL');
    }
    record('run with common-word passwords', d.output());
    const msgs = all.messages.filter((m) => m.topic.startsWith('pop2mqtt/') || m.topic.startsWith('homeassistant/'));

    // Discovery: intact, and every entity tied to an availability that can say "online".
    const discovery = msgs.filter((m) => m.topic.startsWith('homeassistant/') && m.payload.length > 0);
    assert.ok(discovery.length >= 1 + 2 + 8 * WORDS.length, `discovery configs: ${discovery.length}`);
    for (const m of discovery) {
      assert.doesNotMatch(m.text, /\*\*\*/, m.topic);
      const cfgJson = m.json as { availability: Array<{ payload_available: string; topic: string }> };
      assert.deepEqual(cfgJson.availability.map((a) => [a.topic, a.payload_available]), [['pop2mqtt/bridge/state', 'online']], m.topic);
    }
    assert.ok(msgs.some((m) => m.topic === 'pop2mqtt/bridge/state' && m.text === '{"state":"online"}'));
    // Status of every mailbox: ok, nothing masked.
    for (const w of WORDS) {
      const st = msgs.filter((m) => m.topic === `pop2mqtt/${w === 'home' ? 'home' : `mb-${w}`}/status`).at(-1);
      assert.ok(st, `status of ${w}`);
      assert.equal((st.json as { result: string }).result, 'ok', st.text);
      assert.doesNotMatch(st.text, /\*\*\*/);
    }
    // Topics are ours: none masked. (The subject topic carries the masked subject, capped to 64 characters.)
    for (const m of msgs) if (!m.topic.startsWith('pop2mqtt/garage/by-subject/')) assert.doesNotMatch(m.topic, /\*/, m.topic);
    // The HA event shows the subject with the token masked before the cut.
    const ev = msgs.find((m) => m.topic === 'pop2mqtt/rule/garage/event')!;
    assert.match((ev.json as { subject: string }).subject, /^x{240} open garage \*\*…$/, "masked, then cut at 255");

    // The token, or any 8 characters of it, appears on no topic and in no payload or user property.
    const pieces = [COMMAND_TOKEN, ...Array.from({ length: COMMAND_TOKEN.length - 7 }, (_, i) => COMMAND_TOKEN.slice(i, i + 8))];
    // (The test's own test_rule request carries the token: everything else is the agent's.)
    const seen = all.messages.filter((m) => !m.topic.startsWith('pop2mqtt/bridge/request/')).flatMap((m) => pieces.filter((p) => `${m.topic}\n${m.payload.toString('latin1')}\n${m.text}\n${JSON.stringify(m.userProperties ?? {})}`.includes(p)).map((p) => `${m.topic}: ${p}`));
    assert.deepEqual(seen, []);
    assert.ok(all.messages.some((m) => m.topic === 'pop2mqtt/garage/note' && m.text === 'the token is ***\n'), 'the attachment was published, token masked');
  } finally {
    await all.close();
  }
});
