// Config secrets: ${VAR}, *_file and !secret resolve, are registered for masking, never leak into errors, and loose permissions warn.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { redact } from '../../src/log.js';
import type { Logger } from '../../src/log.js';
import { issueAt, lineOf, minimalYaml, parse, parseError } from '../support/config-yaml.js';

const T = { timeout: 10_000 };
/** Warnings other than the reminder that a config without rules publishes nothing. */
const realWarnings = (w: string[]) => w.filter((x) => !x.startsWith('no rules:'));
let dir = '';

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'p2m-cfg-secrets-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string, mode = 0o600): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

describe('config secrets: ${VAR}', () => {
  it('replaces references anywhere in strings and registers secret values', T, () => {
    const text = minimalYaml('    name: "${BOX_NAME} box"\n').replace('mqtt://127.0.0.1:1883', 'mqtt://${MQTT_HOST}:1883');
    const secret = 'env-secret-' + Date.now();
    const loaded = parse(text, { env: { POP3_PASSWORD: secret, BOX_NAME: 'Home', MQTT_HOST: '127.0.0.1' } });
    assert.equal(loaded.config.mailboxes[0]!.password, secret);
    assert.equal(loaded.config.mailboxes[0]!.name, 'Home box');
    assert.equal(loaded.config.mqtt.url, 'mqtt://127.0.0.1:1883');
    assert.deepEqual(loaded.secrets, [secret], 'only the password is a secret; a host name is not');
    assert.equal(redact(`login with ${secret} now`), 'login with *** now', 'registered with registerSecret()');
  });

  it('$${ is a literal ${', T, () => {
    const loaded = parse(minimalYaml('    name: "cost $${HOME} and $$5"\n'));
    assert.equal(loaded.config.mailboxes[0]!.name, 'cost ${HOME} and $$5');
  });

  it('a whole unquoted ${VAR} on a number or boolean key becomes that type', T, () => {
    const loaded = parse(minimalYaml('    port: ${PORT}\n    keep: ${KEEP}\n'), { env: { POP3_PASSWORD: 'p-123', PORT: '1995', KEEP: 'false' } });
    assert.equal(loaded.config.mailboxes[0]!.port, 1995);
    assert.equal(loaded.config.mailboxes[0]!.keep, false);
    // A numeric password stays a string.
    assert.equal(parse(minimalYaml(), { env: { POP3_PASSWORD: '123456' } }).config.mailboxes[0]!.password, '123456');
  });

  it('variables named like secrets are secrets wherever they are used', T, () => {
    const loaded = parse(minimalYaml().replace('mqtt://127.0.0.1:1883', 'mqtt://bob:${MQTT_TOKEN}@127.0.0.1'), {
      env: { POP3_PASSWORD: 'pop-pass', MQTT_TOKEN: 'tok-value-42' },
    });
    assert.ok(loaded.secrets.includes('tok-value-42'));
    assert.ok(loaded.secrets.includes('pop-pass'));
  });
});

describe('config secrets: *_file', () => {
  it('reads password_file relative to the config dir, trims the trailing newline', T, () => {
    write('pop3-pw', 'file-secret-value\n');
    write('mqtt-pw', 'mqtt-file-secret\r\n');
    const text = minimalYaml()
      .replace('    password: ${POP3_PASSWORD}\n', '    password_file: ./pop3-pw\n')
      .replace('mqtt:\n', 'mqtt:\n  username: bob\n  password_file: mqtt-pw\n');
    const loaded = parse(text, { file: path.join(dir, 'config.yaml') });
    const m = loaded.config.mailboxes[0]!;
    assert.equal(m.password, 'file-secret-value');
    assert.equal(m.password_file, path.join(dir, 'pop3-pw'));
    assert.equal(loaded.config.mqtt.password, 'mqtt-file-secret');
    assert.deepEqual(loaded.secrets.sort(), ['file-secret-value', 'mqtt-file-secret']);
    assert.equal(redact('x file-secret-value y'), 'x *** y');
    assert.deepEqual(realWarnings(loaded.warnings), []);
  });

  it('reads oauth client_secret_file and refresh_token_file', T, () => {
    write('cs', 'client-secret-xyz\n');
    write('rt', 'refresh-token-xyz\n');
    const text = minimalYaml().replace(
      '    password: ${POP3_PASSWORD}\n',
      '    auth: oauthbearer\n    oauth:\n      token_url: https://idp.example/token\n      client_id: c\n      client_secret_file: cs\n      refresh_token_file: rt\n',
    );
    const oauth = parse(text, { file: path.join(dir, 'config.yaml') }).config.mailboxes[0]!.oauth!;
    assert.equal(oauth.client_secret, 'client-secret-xyz');
    assert.equal(oauth.refresh_token, 'refresh-token-xyz');
  });

  it('an unreadable or empty file is an error with path and line', T, () => {
    const text = minimalYaml().replace('    password: ${POP3_PASSWORD}\n', '    password_file: ./missing-pw\n');
    const issue = issueAt(parseError(text, { file: path.join(dir, 'config.yaml') }), 'mailboxes[0].password_file');
    assert.equal(issue.line, lineOf(text, 'password_file'));
    assert.match(issue.message, /cannot read .*missing-pw: ENOENT/);
    write('empty-pw', '\n');
    const empty = minimalYaml().replace('    password: ${POP3_PASSWORD}\n', '    password_file: ./empty-pw\n');
    assert.match(issueAt(parseError(empty, { file: path.join(dir, 'config.yaml') }), 'mailboxes[0].password_file').message, /is empty/);
  });

  it('a secret file readable by other users gives a warning', T, () => {
    write('open-pw', 'open-secret-value\n', 0o644);
    const text = minimalYaml().replace('    password: ${POP3_PASSWORD}\n', '    password_file: ./open-pw\n');
    const loaded = parse(text, { file: path.join(dir, 'config.yaml') });
    assert.deepEqual(loaded.warnings.length, 2, loaded.warnings.join('\n'));
    assert.match(realWarnings(loaded.warnings)[0]!, /open-pw holds a secret and is accessible to other users \(mode 644\)/);
    assert.ok(!loaded.warnings.join().includes('open-secret-value'));
  });
});

describe('config secrets: !secret', () => {
  it('reads the key from secrets.yaml beside the config', T, () => {
    const sub = mkdtempSync(path.join(dir, 'ha-'));
    writeFileSync(path.join(sub, 'secrets.yaml'), 'pop3_home: "tagged-secret-value"\nmqtt_pw: 12345678\n', { mode: 0o600 });
    const text = minimalYaml().replace('${POP3_PASSWORD}', '!secret pop3_home').replace('mqtt:\n', 'mqtt:\n  username: u\n  password: !secret mqtt_pw\n');
    const loaded = parse(text, { file: path.join(sub, 'config.yaml'), env: {} });
    assert.equal(loaded.config.mailboxes[0]!.password, 'tagged-secret-value');
    assert.equal(loaded.config.mqtt.password, '12345678');
    assert.ok(loaded.secrets.includes('tagged-secret-value'));
    assert.equal(redact('tagged-secret-value'), '***');
    assert.deepEqual(realWarnings(loaded.warnings), []);
  });

  it('an unknown name or a missing secrets.yaml is an error with path and line', T, () => {
    const sub = mkdtempSync(path.join(dir, 'ha-'));
    const text = minimalYaml().replace('${POP3_PASSWORD}', '!secret nope');
    const missing = issueAt(parseError(text, { file: path.join(sub, 'config.yaml'), env: {} }), 'mailboxes[0].password');
    assert.equal(missing.line, lineOf(text, '!secret'));
    assert.match(missing.message, /!secret nope: cannot read secrets file .*secrets\.yaml: ENOENT/);
    writeFileSync(path.join(sub, 'secrets.yaml'), 'other: x\n', { mode: 0o600 });
    assert.match(issueAt(parseError(text, { file: path.join(sub, 'config.yaml'), env: {} }), 'mailboxes[0].password').message, /no such key/);
  });

  it('secretsFile option points elsewhere; a world-readable secrets file warns', T, () => {
    const file = write('my-secrets.yaml', 'pw: other-secret-value\n', 0o604);
    const text = minimalYaml().replace('${POP3_PASSWORD}', '!secret pw');
    const loaded = parse(text, { file: path.join(dir, 'config.yaml'), secretsFile: file, env: {} });
    assert.equal(loaded.config.mailboxes[0]!.password, 'other-secret-value');
    assert.equal(realWarnings(loaded.warnings).length, 1);
    assert.match(realWarnings(loaded.warnings)[0]!, /secrets file .*my-secrets\.yaml is accessible to other users/);
  });
});

describe('config secrets never appear in ConfigError text', () => {
  const secret = 'Sup3r-Secret-Value';

  it('from ${VAR} placed where validation echoes the value', T, () => {
    // A duration error quotes the bad input: the secret must be masked in it.
    const text = minimalYaml('    timeouts: { connect: "${POP3_PASSWORD}" }\n    backoff: { min: "x${POP3_PASSWORD}" }\n');
    const err = parseError(text, { env: { POP3_PASSWORD: secret } });
    issueAt(err, 'mailboxes[0].timeouts.connect');
    assert.ok(!err.message.includes(secret), err.message);
    assert.match(err.message, /\*\*\*/, 'the value was there and got masked');
    assert.ok(!JSON.stringify(err.issues).includes(secret));
  });

  it('from !secret placed where validation fails', T, () => {
    const sub = mkdtempSync(path.join(dir, 'leak-'));
    writeFileSync(path.join(sub, 'secrets.yaml'), `s: "${secret}-tag"\n`, { mode: 0o600 });
    const text = minimalYaml('    max_message_size: !secret s\n    schedule: !secret s\n');
    const err = parseError(text, { file: path.join(sub, 'config.yaml'), env: { POP3_PASSWORD: 'ok-pass' } });
    issueAt(err, 'mailboxes[0].max_message_size');
    assert.ok(!err.message.includes(`${secret}-tag`), err.message);
    assert.match(err.message, /invalid size "\*\*\*"/);
  });

  it('a literal password is masked too', T, () => {
    const text = minimalYaml('    servername: ""\n').replace('${POP3_PASSWORD}', secret).replace('mqtt:\n', `mqtt:\n  keepalive: "${secret}"\n`);
    const err = parseError(text);
    issueAt(err, 'mqtt.keepalive');
    assert.ok(!err.message.includes(secret), err.message);
  });

  it('credentials in the broker URL are never echoed', T, () => {
    const text = minimalYaml().replace('mqtt://127.0.0.1:1883', `gopher://bob:${secret}@host`);
    const err = parseError(text);
    assert.ok(!err.message.includes(secret), err.message);
  });
});

describe('config secrets: file permission warnings', () => {
  it('a config file holding a literal secret and readable by others warns; 600 does not', T, async () => {
    const text = minimalYaml().replace('${POP3_PASSWORD}', 'literal-password-1');
    const open = write('open.yaml', text, 0o644);
    const warned: string[] = [];
    const logger: Logger = {
      debug() {}, info() {}, error() {},
      warn: (m) => warned.push(m),
      child() { return logger; },
    };
    const loaded = await loadConfig(open, { logger, env: {} });
    assert.equal(realWarnings(loaded.warnings).length, 1, loaded.warnings.join('\n'));
    assert.match(realWarnings(loaded.warnings)[0]!, /config file .*open\.yaml holds a secret and is accessible to other users \(mode 644\)/);
    assert.deepEqual(warned, loaded.warnings, 'warnings go to the logger');
    assert.ok(!loaded.warnings.join().includes('literal-password-1'));

    const closed = write('closed.yaml', text, 0o600);
    assert.deepEqual(realWarnings((await loadConfig(closed, { env: {} })).warnings), []);
  });

  it('a readable config without literal secrets does not warn', T, async () => {
    const file = write('env-only.yaml', minimalYaml(), 0o644);
    assert.deepEqual(realWarnings((await loadConfig(file, { env: { POP3_PASSWORD: 'from-env-1' } })).warnings), []);
  });

  it('group access is fine for the agent\'s own group but warns for a foreign one', T, async (t) => {
    const file = write('group.yaml', minimalYaml().replace('${POP3_PASSWORD}', 'literal-password-2'), 0o640);
    const { chownSync } = await import('node:fs');
    assert.deepEqual(realWarnings((await loadConfig(file, { env: {} })).warnings), [], 'own group: no warning');
    if (process.getuid!() !== 0) return t.diagnostic('not root: the foreign-group half needs chown');
    chownSync(file, 0, process.getgid!() + 4242);
    const warnings = realWarnings((await loadConfig(file, { env: {} })).warnings);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /accessible to group \d+ \(mode 640\)/);
  });

  it('tls: none with allow_insecure_auth warns about cleartext passwords', T, () => {
    const loaded = parse(minimalYaml('    tls: none\n    auth: user\n    allow_insecure_auth: true\n'));
    assert.equal(loaded.warnings.length, 2, loaded.warnings.join('\n'));
    assert.ok(loaded.warnings.some((w) => /mailboxes\[0\] \(home\).*cleartext password on every poll/.test(w)));
    assert.ok(loaded.warnings.some((w) => /no rules/.test(w)));
  });
});

describe('config: ConfigError type', () => {
  it('is an Error with structured issues', T, () => {
    const err = parseError(minimalYaml('    tls: x\n'));
    assert.ok(err instanceof Error);
    assert.ok(err instanceof ConfigError);
    assert.equal(err.name, 'ConfigError');
    assert.ok(err.issues.every((i) => typeof i.path === 'string' && typeof i.message === 'string'));
  });
});
