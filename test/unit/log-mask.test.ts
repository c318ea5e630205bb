// Masking that never corrupts: common-word passwords leave log messages, config errors and publications intact; command tokens are masked in every publication, before any cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clip, createLogger, errorText, maskTokens, maskTokensInPublication, registerCommandToken, registerSecret } from '../../src/log.js';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/config/errors.js';
import { buildDiscovery } from '../../src/homeassistant/discovery.js';

const WORDS = ['online', 'secret', 'home', 'pop2mqtt', 'true'];
const TOKEN = 'Tk9"zq\\Lm7p-31xw';
for (const w of WORDS) registerSecret(w);
registerCommandToken(TOKEN);

function configError(yaml: string, env: NodeJS.ProcessEnv): ConfigError {
  try {
    parseConfigText(yaml, { file: '/nonexistent-dir/config.yaml', env });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e;
  }
  assert.fail('config accepted');
}

const yaml = (mailboxExtra: string, rules = '') => `mqtt:
  url: mqtt://127.0.0.1:1883
  password: \${MQTT_PASSWORD}
homeassistant:
  discovery: true
mailboxes:
  - id: home
    host: 127.0.0.1
    username: alice
    password: \${POP3_PASSWORD}
${mailboxExtra}${rules}`;

test('config errors with common-word passwords: paths and our text intact, a quoted secret masked', () => {
  for (const w of WORDS) {
    const env = { POP3_PASSWORD: w, MQTT_PASSWORD: w };
    const short = configError(yaml('', `rules:
  - name: gate
    action: true
    when:
      shared_secret: { secret: "abc" }
    publish: { topic: gate/cmd }
`), env);
    assert.match(short.message, /^rules\[0\]\.when\.shared_secret\.secret: a shared secret must be at least 12 characters \(line \d+\)$/m, `password ${w}: ${short.message}`);
    assert.doesNotMatch(short.message, /\*\*\*/, `password ${w}`);
    const dup = configError(yaml('  - id: home\n    host: h\n    username: u\n    password: x\n    port: 0\n'), env);
    assert.match(dup.message, /^mailboxes\[1\]\.port: Too small: expected number to be >=1 \(line \d+\)$/m, `password ${w}: ${dup.message}`);
    // errorText() shows a ConfigError as it is (it is masked where it quotes input), not through redact().
    assert.equal(errorText(short), short.message);
  }
  // The input at the issue's path is what a message can quote: a secret there is masked, the rest stays.
  const quoted = configError(yaml('    schedule: "${POP3_PASSWORD} * * * *"\n'), { POP3_PASSWORD: 'hunter2-x', MQTT_PASSWORD: 'm' });
  assert.doesNotMatch(quoted.message, /hunter2-x/);
  assert.match(quoted.message, /mailboxes\[0\]\.schedule: invalid cron expression \(\*\*\* is not a valid minute \(0-59\)\)/);
  assert.ok(quoted.issues.every((i) => !('input' in i)), 'the input is never kept on the error');
});

test('logger: the message and keys are never masked; field values are, except structural ones', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => lines.push(l), timestamps: false });
  log.warn('a shared secret is online at home: pop2mqtt says true', { mailbox: 'home', topic: 'pop2mqtt/bridge/state', error: new Error('server said: your password is online'), detail: 'online', ok: true, nested: { text: 'secret' } });
  assert.equal(lines[0], 'WARN  a shared secret is online at home: pop2mqtt says true mailbox=home topic=pop2mqtt/bridge/state error="server said: your password is ***" detail=*** ok=true nested={"text":"***"}');
  log.info('token', { seen: `subject ${TOKEN}` });
  assert.ok(!lines[1]!.includes('Lm7p'), lines[1]);
});

test('mask before cutting: a cut never shows half a token', () => {
  const subject = `${'x'.repeat(190)} ${TOKEN} tail`;
  const cut = clip(subject, 200, maskTokens);
  assert.ok(!cut.includes(TOKEN.slice(0, 6)), cut);
  assert.ok(cut.endsWith('*** tail'), cut);
  assert.equal(clip('short', 200), 'short');
  assert.equal(clip('online and more', 6), '*** an…', 'credentials by default, masked before the cut')
});

test('publication mask: raw and JSON-escaped tokens, topics and user properties; nothing else touched', () => {
  const json = JSON.stringify({ subject: `open garage ${TOKEN}`, state: 'online', ok: true });
  const buf = Buffer.from(json);
  const out = maskTokensInPublication(`pop2mqtt/cmd/${TOKEN}`, buf, { subject: TOKEN, home: 'online' });
  assert.equal(out.masked, true);
  assert.equal(out.topic, 'pop2mqtt/cmd/***');
  assert.deepEqual(JSON.parse(out.payload.toString()), { subject: 'open garage ***', state: 'online', ok: true });
  assert.deepEqual(out.userProperties, { subject: '***', home: 'online' });
  const raw = maskTokensInPublication('t', Buffer.from(`\x00\xff${TOKEN}\x00`, 'latin1'));
  assert.ok(!raw.payload.includes(Buffer.from(TOKEN)));
  const clean = Buffer.from('{"state":"online"}');
  const same = maskTokensInPublication('pop2mqtt/bridge/state', clean);
  assert.equal(same.payload, clean, 'an untouched payload is the very same Buffer');
  assert.equal(same.masked, false);
});

test('discovery configs are never masked, whatever the passwords', () => {
  const { messages } = buildDiscovery({ mailboxes: [{ id: 'home' }], rules: [{ name: 'gate', image: {} }] }, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1' });
  for (const m of messages) {
    const text = JSON.stringify(m.payload);
    const out = maskTokensInPublication(m.topic, Buffer.from(text));
    assert.equal(out.masked, false, m.topic);
    assert.match(text, /"payload_available":"online"/);
  }
});
