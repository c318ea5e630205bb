// `provider: gmail` with an app password works end to end: the preset's mailbox, pointed at the test Dovecot, logs in with the password (no OAuth) and publishes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLab, minimalConfig, runCli, USER, PASS, type Lab } from '../support/lab.js';
import { makeMail } from '../support/maildir.js';
import { subscribe } from '../support/mqtt-subscriber.js';

const ANYTHING = '  - name: anything\n    when: { subject: { contains: "Motion" } }\n';

let lab: Lab;
before(async () => {
  lab = await startLab();
});
after(async () => {
  await lab?.stop();
});

test('provider: gmail with a password polls with a password mechanism and publishes; check accepts it', { timeout: 120_000 }, async () => {
  // The README's Gmail config, with host/port/ca_file overridden to reach the test Dovecot instead of pop.gmail.com.
  const cfg = await lab.writeConfig(`mqtt:
  url: ${lab.mosquitto.url}
state_dir: ./data-gmail
mailboxes:
  - id: gmail
    provider: gmail
    host: 127.0.0.1
    port: ${lab.dovecot.tlsPort}
    ca_file: ${lab.dovecot.caFile}
    username: ${USER}
    password: \${POP3_PASSWORD}
    existing: process
rules:
  - name: anything
    when: { subject: { contains: "Motion" } }
    publish: { topic: "gmail/motion" }
`, 'gmail.yaml');
  const c = await runCli(['check', '--config', cfg], { env: lab.env, cwd: lab.dir });
  assert.equal(c.code, 0, c.stderr);
  await lab.dovecot.deliver(USER, makeMail({ from: 'nvr@cameras.home.arpa', subject: 'Motion Detected: Driveway' }));
  const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/gmail/motion']);
  try {
    const r = await runCli(['once', '--config', cfg], { env: { ...lab.env, POP2MQTT_LOG_LEVEL: 'debug' }, cwd: lab.dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    await sub.waitForCount(1, 20_000);
    assert.match(JSON.parse(sub.messages[0]!.payload.toString()).subject, /Driveway/);
    assert.match(r.stderr + r.stdout, /authenticating.*mechanism=plain/, 'AUTH PLAIN inside TLS, as auth: auto picks for a password');
    assert.doesNotMatch(r.stderr + r.stdout, /xoauth2|token/i, 'no OAuth was attempted');
  } finally {
    await sub.close();
  }
});

test('log_format: json through the real CLI: every log line of a poll is one JSON object; POP2MQTT_LOG_LEVEL honoured', { timeout: 120_000 }, async () => {
  const cfg = await lab.writeConfig(minimalConfig(lab, { stateDir: './data-json', extra: 'log_format: json\n', rules: ANYTHING }), 'json.yaml');
  const r = await runCli(['once', '--config', cfg], { env: { ...lab.env, POP2MQTT_LOG_LEVEL: 'debug' }, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length >= 3, r.stderr);
  const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const e of events) {
    assert.equal(typeof e.time, 'string');
    assert.ok(['debug', 'info', 'warn', 'error'].includes(e.level as string));
    assert.equal(typeof e.msg, 'string');
  }
  assert.ok(events.some((e) => e.msg === 'poll' && e.scope === 'home' && typeof e.messages === 'number'), r.stderr);
  assert.ok(events.some((e) => e.level === 'debug'), 'POP2MQTT_LOG_LEVEL=debug honoured');
  assert.ok(!r.stderr.includes(PASS), 'the password never appears');
});

test('SCRAM-SHA-256 against Dovecot through the CLI prepares the password with SASLprep: a soft hyphen in it is mapped to nothing', { timeout: 120_000 }, async () => {
  // Dovecot stores PASS as typed; "alice-Secret-pw-\u00AD4711" is the same password after SASLprep (RFC 4013 example 1),
  // so only a client that applies SASLprep (not NFKC alone, which keeps U+00AD) logs in.
  const cfg = await lab.writeConfig(minimalConfig(lab, { stateDir: './data-scram', mailboxExtra: '    auth: scram-sha-256\n', rules: ANYTHING }), 'scram.yaml');
  const soft = PASS.replace(/(\d+)$/, '\u00AD$1');
  assert.notEqual(soft, PASS);
  const r = await runCli(['once', '--config', cfg], { env: { ...lab.env, POP3_PASSWORD: soft, POP2MQTT_LOG_LEVEL: 'debug' }, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /authenticating.*mechanism=scram-sha-256/);
});
