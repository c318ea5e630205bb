// The Home Assistant add-on path: options -> config mapping (validated by the real config loader), and the container entrypoint against a fake Supervisor serving the MQTT service.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { addonConfig, fetchMqttService, parseAddonOptions, AddonOptionsError, type AddonOptions } from '../../src/cli/commands/addon-options.js';
import { containerArgv, readableBy } from '../../src/cli/commands/container.js';
import { loadConfig } from '../../src/config/index.js';

const RULES = `
- name: camera-motion
  when:
    subject: { regex: "^Motion Detected: (?<camera>.+)$" }
  publish: { topic: "camera/{{camera}}" }
`;

const OPTIONS: AddonOptions = {
  mailboxes: [{ id: 'nvr', host: 'pop.example.org', port: 995, tls: 'implicit', username: 'alerts@example.org', password: 'p${ENV}w"d: #1' }],
  rules: RULES,
  log_level: 'debug',
};

const SERVICE = { host: 'core-mosquitto', port: 1883, ssl: false, protocol: '3.1.1', username: 'addons', password: 'mq-secret-7731' };

function writeFiles(dir: string, files: ReturnType<typeof addonConfig>): string {
  for (const [n, c] of Object.entries(files.secrets)) writeFileSync(path.join(dir, n), c);
  const cfg = path.join(dir, 'config.yaml');
  writeFileSync(cfg, files.config, { mode: 0o600 });
  return cfg;
}

describe('add-on options -> config', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'p2m-addon-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('maps mailboxes, rules, log level, broker and discovery; the config loader accepts it', async () => {
    const files = addonConfig(OPTIONS, SERVICE, '/data', dir);
    const doc = parseYaml(files.config) as Record<string, any>;
    assert.equal(doc.state_dir, '/data/state');
    assert.equal(doc.log_level, 'debug');
    assert.deepEqual(doc.homeassistant, { discovery: true }, 'discovery on by default');
    assert.equal(doc.mqtt.url, 'mqtt://core-mosquitto:1883');
    assert.equal(doc.mqtt.username, 'addons');
    assert.equal(doc.mqtt.protocol_version, 4, 'the service promises MQTT 3.1.1');
    assert.equal(doc.mqtt.password_file, path.join(dir, 'mqtt-password'));
    assert.deepEqual(doc.mailboxes[0], {
      id: 'nvr', host: 'pop.example.org', port: 995, tls: 'implicit', username: 'alerts@example.org', password_file: path.join(dir, 'mailbox-nvr-password'),
    });
    assert.equal(doc.rules[0].name, 'camera-motion');
    // Secrets live in files, never in the config text.
    assert.ok(!files.config.includes('mq-secret-7731') && !files.config.includes('p${ENV}'), files.config);
    assert.deepEqual(files.secrets, { 'mqtt-password': 'mq-secret-7731', 'mailbox-nvr-password': 'p${ENV}w"d: #1' });

    const cfg = writeFiles(dir, { ...files, config: files.config.replace('/data/state', path.join(dir, 'state')) });
    const loaded = await loadConfig(cfg, { env: {} });
    assert.equal(loaded.config.mailboxes[0]!.password, 'p${ENV}w"d: #1', 'a password with ${...} is taken literally');
    assert.equal(loaded.config.mqtt.password, 'mq-secret-7731');
    assert.equal(loaded.config.homeassistant.discovery, true);
    assert.equal(loaded.config.rules.length, 1);
  });

  test('discovery can be switched off; TLS broker and IPv6 host; rules pasted with their "rules:" key', () => {
    const files = addonConfig({ ...OPTIONS, discovery: false, rules: `rules:${RULES.replace(/^/gm, '  ')}` }, { host: 'fd00::1', port: 8883, ssl: true }, '/data', '/data/secrets');
    const doc = parseYaml(files.config) as Record<string, any>;
    assert.deepEqual(doc.homeassistant, { discovery: false });
    assert.equal(doc.mqtt.url, 'mqtts://[fd00::1]:8883');
    assert.equal(doc.mqtt.username, undefined);
    assert.equal(doc.mqtt.password_file, undefined);
    assert.equal(doc.rules[0].name, 'camera-motion');
  });

  test('empty rules give an empty list; bad rules and bad mailboxes give errors that name the option, without secrets', () => {
    assert.deepEqual((parseYaml(addonConfig({ ...OPTIONS, rules: '' }, SERVICE, '/data', '/s').config) as any).rules, []);
    assert.throws(() => addonConfig({ ...OPTIONS, rules: '- name: [unclosed' }, SERVICE, '/data', '/s'), (e: Error) => e instanceof AddonOptionsError && /rules is not valid YAML/.test(e.message));
    assert.throws(() => addonConfig({ ...OPTIONS, rules: 'name: x' }, SERVICE, '/data', '/s'), /rules must be a YAML list/);
    const twice = { ...OPTIONS, mailboxes: [OPTIONS.mailboxes[0]!, OPTIONS.mailboxes[0]!] };
    assert.throws(() => addonConfig(twice, SERVICE, '/data', '/s'), /mailbox id "nvr" is used twice/);
    assert.throws(() => parseAddonOptions({ mailboxes: [{ id: 'a', host: 'h', username: 'u' }] }), (e: Error) => /mailboxes\[0\]\.password is required/.test(e.message));
    assert.throws(() => parseAddonOptions({ mailboxes: [{ id: 'a', host: 'h', username: 'u', password: 'sekrit-99', colour: 1 }] }), (e: Error) => /mailboxes\[0\]\.colour is not a known key/.test(e.message) && !e.message.includes('sekrit-99'));
    assert.throws(() => parseAddonOptions({ rules: ['x'] }), /rules must be YAML text/);
  });
});

describe('container entrypoint against a fake Supervisor', () => {
  let server: Server | undefined;
  let url = '';
  const seen: { path: string; auth: string | undefined }[] = [];
  let status = 200;
  let failuresLeft = 0;
  const TOKEN = 'a'.repeat(40);
  let dir = '';

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'p2m-sup-'));
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization });
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(502).end();
        return;
      }
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ result: 'error', message: 'Invalid token' }));
        return;
      }
      if (req.url === '/services/mqtt' && status === 200) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: 'ok', data: { ...SERVICE, addon: 'core_mosquitto' } }));
        return;
      }
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ result: 'error', message: 'Service not enabled' }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(async () => {
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('writes config and secrets from options.json and the MQTT service, and runs `run` on it', async () => {
    writeFileSync(path.join(dir, 'options.json'), JSON.stringify(OPTIONS));
    const env = { POP2MQTT_DATA_DIR: dir, POP2MQTT_SUPERVISOR_URL: url, SUPERVISOR_TOKEN: TOKEN, POP2MQTT_RUN_AS_ROOT: '1' };
    // The image's default command (run --config <data>/config.yaml) counts as "no command" in the add-on.
    const got = await containerArgv(['run', '--config', path.join(dir, 'config.yaml')], env);
    assert.deepEqual(got, ['run', '--config', path.join(dir, 'pop2mqtt.yaml')]);
    assert.deepEqual(seen.at(-1), { path: '/services/mqtt', auth: `Bearer ${TOKEN}` });
    const text = readFileSync(path.join(dir, 'pop2mqtt.yaml'), 'utf8');
    assert.match(text, /url: mqtt:\/\/core-mosquitto:1883/);
    assert.equal(statSync(path.join(dir, 'pop2mqtt.yaml')).mode & 0o777, 0o600);
    assert.equal(readFileSync(path.join(dir, 'secrets', 'mqtt-password'), 'utf8'), 'mq-secret-7731');
    assert.equal(statSync(path.join(dir, 'secrets', 'mqtt-password')).mode & 0o777, 0o600);
    assert.ok(statSync(path.join(dir, 'state')).isDirectory());
  });

  test('outside the add-on the default is run --config /data/config.yaml, and an explicit command is kept', async () => {
    const env = { POP2MQTT_DATA_DIR: dir, POP2MQTT_RUN_AS_ROOT: '1' };
    assert.deepEqual(await containerArgv([], env), ['run', '--config', path.join(dir, 'config.yaml')]);
    assert.deepEqual(await containerArgv(['check', '--config', '/x.yaml'], env), ['check', '--config', '/x.yaml']);
  });

  test('retries a Supervisor that is not ready, then gives a clear error when no broker is provided or the token is wrong', async () => {
    failuresLeft = 2;
    const svc = await fetchMqttService(url, TOKEN, { attempts: 3, delayMs: 10 });
    assert.equal(svc.host, 'core-mosquitto');
    failuresLeft = 5;
    await assert.rejects(fetchMqttService(url, TOKEN, { attempts: 3, delayMs: 10 }), /the Supervisor answered 502 \(after 3 attempts\)/);
    failuresLeft = 0;
    await assert.rejects(fetchMqttService(url, 'wrong', { attempts: 1 }), /refused the MQTT service request \(401\)/);
    status = 400;
    await assert.rejects(fetchMqttService(url, TOKEN, { attempts: 1 }), /no MQTT broker from the Supervisor \(400: Service not enabled\): install and start the Mosquitto broker add-on/);
    status = 200;
  });
});

test('readableBy: owner, group and other bits decide whether uid 1000 can read the config', () => {
  assert.equal(readableBy({ uid: 1000, gid: 0, mode: 0o100600 }, 1000, 1000), true);
  assert.equal(readableBy({ uid: 0, gid: 0, mode: 0o100600 }, 1000, 1000), false, 'root-owned 0600: the usual bind-mount mistake');
  assert.equal(readableBy({ uid: 0, gid: 1000, mode: 0o100640 }, 1000, 1000), true);
  assert.equal(readableBy({ uid: 1000, gid: 1000, mode: 0o100044 }, 1000, 1000), false, 'owner bits win for the owner');
  assert.equal(readableBy({ uid: 0, gid: 0, mode: 0o100644 }, 1000, 1000), true);
});
