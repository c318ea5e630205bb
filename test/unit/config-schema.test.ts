// Config schema: the documented minimal config, defaults, presets, example.yaml and the JSON Schema.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigSchema, configJsonSchema, loadConfig, parseDuration, parseSize } from '../../src/config/index.js';
import { MINIMAL_ENV, minimalYaml, parse, parseError, issueAt } from '../support/config-yaml.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(root, 'test/fixtures/config');
const T = { timeout: 10_000 };

describe('config: the minimal config of the brief', () => {
  it('validates and gets the documented defaults', T, async () => {
    const loaded = await loadConfig(path.join(fixtures, 'minimal.yaml'), { env: MINIMAL_ENV });
    const c = loaded.config;
    assert.equal(loaded.file, path.join(fixtures, 'minimal.yaml'));
    assert.equal(loaded.dir, fixtures);
    assert.equal(c.version, 1);
    assert.equal(c.state_dir, path.join(fixtures, 'data'), 'state_dir is resolved against the config dir');
    assert.equal(c.log_level, 'info');
    assert.deepEqual(c.trusted_authserv_ids, []);
    assert.equal(c.max_message_size, 25 * 1024 * 1024);
    assert.deepEqual(c.mqtt, {
      url: 'mqtt://127.0.0.1:1883',
      base_topic: 'pop2mqtt',
      protocol_version: 5,
      keepalive: 60_000,
      reconnect: { min: 1000, max: 60_000 },
      qos: 1,
      min_request_interval: 10_000,
    });
    assert.deepEqual(c.outbox, { max_messages: 10_000, max_bytes: 50 * 1024 * 1024, when_full: 'stop_polling' });
    assert.deepEqual(c.homeassistant, { discovery: false, prefix: 'homeassistant', status_topic: 'homeassistant/status', birth_payload: 'online' });
    assert.equal(c.mailboxes.length, 1);
    const m = c.mailboxes[0]!;
    assert.equal(m.id, 'home');
    assert.equal(m.host, '127.0.0.1');
    assert.equal(m.port, 995);
    assert.equal(m.tls, 'implicit');
    assert.equal(m.ca_file, path.join(fixtures, 'ca.pem'));
    assert.equal(m.username, 'alice');
    assert.equal(m.password, MINIMAL_ENV.POP3_PASSWORD);
    assert.equal(m.schedule, '*/30 * * * * *');
    assert.equal(m.keep, true);
    assert.equal(m.existing, 'skip');
    assert.equal(m.auth, 'auto');
    assert.equal(m.allow_insecure_auth, false);
    assert.deepEqual(m.timeouts, { connect: 15_000, greeting: 15_000, command: 30_000, session: 600_000, min_reply_rate: 256, reply_rate_window: 30_000 });
    assert.equal(m.pipelining, true);
    assert.equal(m.fast_uidl, true);
    assert.equal(m.rules, undefined, 'no list means every rule');
    assert.deepEqual(m.auth_backoff, { max_attempts_per_hour: 3 });
    assert.deepEqual(m.backoff, { min: 30_000, max: 30 * 60_000 });
    assert.equal(m.max_message_size, c.max_message_size, 'inherits the top-level max_message_size');
    assert.equal(c.rules.length, 1);
    assert.equal(c.rules[0]!.name, 'camera-motion');
    assert.deepEqual(loaded.secrets, [MINIMAL_ENV.POP3_PASSWORD]);
    assert.deepEqual(loaded.warnings, []);
  });

  it('defaults the mailbox schedule, port by tls mode, and leaves rules empty', T, () => {
    const c = parse(minimalYaml('    tls: starttls\n')).config;
    assert.equal(c.mailboxes[0]!.schedule, '*/5 * * * *');
    assert.equal(c.mailboxes[0]!.port, 110);
    assert.equal(parse(minimalYaml('    tls: none\n')).config.mailboxes[0]!.port, 110);
    assert.equal(parse(minimalYaml('    tls: starttls\n    port: 1110\n')).config.mailboxes[0]!.port, 1110);
    assert.deepEqual(c.rules, []);
    assert.equal(c.state_dir, '/nonexistent-dir/data');
  });

  it('converts durations and sizes and keeps per-mailbox overrides', T, () => {
    const c = parse(
      minimalYaml(
        '    max_message_size: 512KiB\n    timeouts: { connect: 2s, session: 1h30m }\n    backoff: { min: 250ms, max: 2d }\n',
        'max_message_size: 1GB\noutbox: { max_bytes: 1000 }\n',
      ),
    ).config;
    assert.equal(c.max_message_size, 1024 ** 3);
    assert.equal(c.outbox.max_bytes, 1000);
    const m = c.mailboxes[0]!;
    assert.equal(m.max_message_size, 512 * 1024);
    assert.deepEqual(m.timeouts, { connect: 2000, greeting: 15_000, command: 30_000, session: 90 * 60_000, min_reply_rate: 256, reply_rate_window: 30_000 });
    assert.deepEqual(m.backoff, { min: 250, max: 2 * 86_400_000 });
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseSize('25MB'), 26_214_400);
  });

  it('fills Gmail and Microsoft presets and selects xoauth2', T, () => {
    const yaml = `mqtt: { url: "wss://broker.example:8884/mqtt" }
mailboxes:
  - id: gmail
    provider: gmail
    username: me@gmail.com
    oauth: { client_id: abc, refresh_token: "\${RT}" }
  - id: work
    provider: microsoft
    username: me@example.com
    oauth: { client_id: def, refresh_token: "\${RT}", scope: custom }
`;
    const c = parse(yaml, { env: { RT: 'refresh-token-value' } }).config;
    const [g, w] = c.mailboxes;
    assert.equal(g!.host, 'pop.gmail.com');
    assert.equal(g!.port, 995);
    assert.equal(g!.auth, 'xoauth2');
    assert.equal(g!.oauth?.token_url, 'https://oauth2.googleapis.com/token');
    assert.equal(g!.oauth?.scope, 'https://mail.google.com/');
    assert.equal(w!.host, 'outlook.office365.com');
    assert.match(w!.oauth!.token_url!, /^https:\/\/login\.microsoftonline\.com\//);
    assert.equal(w!.oauth?.scope, 'custom', 'an explicit scope wins over the preset');
  });

  it('provider: gmail with an app password logs in with the password; microsoft refuses a password and names OAuth', T, () => {
    const gmail = `mqtt: { url: "mqtt://127.0.0.1:1883" }
mailboxes:
  - id: gmail
    provider: gmail
    username: me@gmail.com
    password: \${POP3_PASSWORD}
`;
    const g = parse(gmail).config.mailboxes[0]!;
    assert.equal(g.host, 'pop.gmail.com');
    assert.equal(g.port, 995);
    assert.equal(g.tls, 'implicit');
    assert.equal(g.auth, 'auto', 'a password mailbox uses the password mechanisms, not XOAUTH2');
    assert.equal(g.oauth, undefined, 'no token settings, so no token manager');

    const none = parseError(gmail.replace('    password: ${POP3_PASSWORD}\n', ''));
    assert.match(issueAt(none, 'mailboxes[0].password').message, /app password.*App passwords.*or oauth/);

    const ms = parseError(gmail.replace('provider: gmail', 'provider: microsoft'));
    assert.match(issueAt(ms, 'mailboxes[0].password').message, /refuse passwords, app passwords included.*oauth: \{ client_id, refresh_token \}.*docs\/oauth\.md/);
    const msNone = parseError(gmail.replace('provider: gmail', 'provider: microsoft').replace('    password: ${POP3_PASSWORD}\n', ''));
    assert.match(issueAt(msNone, 'mailboxes[0].oauth').message, /required for provider microsoft/);
  });

  it('normalises certificate fingerprints', T, () => {
    const hex = 'AB'.repeat(32);
    const colons = hex.match(/../g)!.join(':');
    assert.equal(parse(minimalYaml(`    fingerprint: "${colons}"\n`)).config.mailboxes[0]!.fingerprint, 'ab'.repeat(32));
    assert.equal(parse(minimalYaml(`    fingerprint: ${hex}\n`)).config.mailboxes[0]!.fingerprint, 'ab'.repeat(32));
    issueAt(parseError(minimalYaml('    fingerprint: abcd\n')), 'mailboxes[0].fingerprint');
  });

  it('derives the Home Assistant status topic from the prefix', T, () => {
    const c = parse(minimalYaml('', 'homeassistant: { discovery: true, prefix: ha }\n')).config;
    // The birth topic is Home Assistant's own default, whatever the discovery prefix.
    assert.deepEqual(c.homeassistant, { discovery: true, prefix: 'ha', status_topic: 'homeassistant/status', birth_payload: 'online' });
  });

  it('ConfigSchema alone parses a plain object (no loader)', T, () => {
    const c = ConfigSchema.parse({ mqtt: { url: 'mqtt://h' }, mailboxes: [{ id: 'a', host: 'h', username: 'u', password: 'p' }] });
    assert.equal(c.mailboxes[0]!.port, 995);
    assert.equal(c.state_dir, './data');
  });
});

describe('config: example.yaml', () => {
  const examplePath = path.join(root, 'config/example.yaml');
  const text = readFileSync(examplePath, 'utf8');

  it('is valid and has no warnings', T, async () => {
    const loaded = await loadConfig(examplePath, { env: { POP3_PASSWORD: 'example-password' } });
    assert.equal(loaded.config.mailboxes[0]!.id, 'home');
    assert.ok(loaded.config.rules.length >= 1);
    assert.deepEqual(loaded.warnings, []);
  });

  it('mentions every key of the schema (outside rules) in a comment or a setting', T, () => {
    const schema = configJsonSchema() as { properties: Record<string, unknown> };
    const keys = new Set<string>();
    const collect = (node: unknown, skipRules: boolean) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      for (const [k, v] of Object.entries((n.properties as Record<string, unknown>) ?? {})) {
        if (skipRules && k === 'rules' && n === schema) continue;
        keys.add(k);
        collect(v, false);
      }
      if (n.items) collect(n.items, false);
      for (const alt of [...((n.anyOf as unknown[]) ?? []), ...((n.oneOf as unknown[]) ?? [])]) collect(alt, false);
    };
    collect(schema, true);
    assert.ok(keys.size > 60, `collected only ${keys.size} keys`);
    const missing = [...keys].filter((k) => !new RegExp(`(^|[\\s{,#-])${k}:`, 'm').test(text));
    assert.deepEqual(missing, [], `keys not documented in config/example.yaml: ${missing.join(', ')}`);
  });

  it('its commented Gmail mailbox is valid once uncommented', T, () => {
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l === '  # - id: gmail');
    assert.notEqual(start, -1);
    const block: string[] = [];
    for (let i = start; i < lines.length && lines[i]!.startsWith('  #'); i++) block.push(lines[i]!.replace(/^ {2}# ?/, '  '));
    const yaml = `mqtt: { url: "mqtt://127.0.0.1" }\nmailboxes:\n${block.join('\n')}\n`;
    const c = parse(yaml, { env: { GMAIL_CLIENT_SECRET: 'gmail-client-secret' }, file: path.join(fixtures, 'gmail.yaml') }).config;
    assert.equal(c.mailboxes[0]!.host, 'pop.gmail.com');
    assert.equal(c.mailboxes[0]!.oauth?.refresh_token, 'gmail-refresh-token-fixture');
  });
});

describe('config: JSON Schema', () => {
  it('is draft 2020-12 JSON with described properties', T, () => {
    const schema = configJsonSchema();
    const round = JSON.parse(JSON.stringify(schema)) as Record<string, any>;
    assert.equal(round.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(round.type, 'object');
    assert.equal(round.additionalProperties, false);
    assert.ok(round.properties.mailboxes, 'has properties.mailboxes');
    assert.equal(round.properties.mailboxes.type, 'array');
    const mailbox = round.properties.mailboxes.items;
    assert.ok(mailbox.properties.schedule.description.length > 10);
    assert.deepEqual(mailbox.properties.tls.enum, ['implicit', 'starttls', 'none']);
    assert.deepEqual(mailbox.required.sort(), ['id', 'username']);
    assert.ok(round.properties.mqtt.properties.url.description);
    assert.deepEqual(round.required.sort(), ['mailboxes', 'mqtt']);
    assert.ok(round.properties.rules, 'rules are part of the schema');
  });
});
