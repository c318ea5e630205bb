// Integration tests of MqttLink against a real Mosquitto: protocol versions, auth, TLS (CA + client cert), websockets, last will, clean stop, reconnects.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { subscribe } from '../support/mqtt-subscriber.js';
import { makeWrongNameCert } from '../support/certs.js';
import { MqttLink } from '../../src/mqtt/link.js';
import { MqttLinkError } from '../../src/mqtt/errors.js';
import type { MqttSettings } from '../../src/mqtt/settings.js';
import { createLogger } from '../../src/log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const T = { timeout: 30_000 };

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function broker(opts: Parameters<typeof startMosquitto>[0] = {}): Promise<MosquittoServer> {
  const b = await startMosquitto(opts);
  cleanups.push(() => b.stop());
  return b;
}

function link(settings: MqttSettings, logLines?: string[]): MqttLink {
  const logger = createLogger({ level: 'debug', timestamps: false, write: (l) => logLines?.push(l) });
  const l = new MqttLink({ connect_timeout: 3_000, reconnect: { min: 100, max: 400 }, ...settings }, { logger, version: '9.9.9' });
  cleanups.push(() => l.stop());
  return l;
}

function waitEvent(emitter: NodeJS.EventEmitter, event: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { emitter.off(event, on); reject(new Error(`no ${event} within ${ms} ms`)); }, ms);
    const on = () => { clearTimeout(t); resolve(); };
    emitter.once(event, on);
  });
}

for (const version of [4, 5] as const) {
  test(`MQTT ${version === 4 ? '3.1.1' : '5'}: connect, publish resolves after PUBACK, subscribe, clean stop publishes offline`, T, async () => {
    const b = await broker();
    const sub = await subscribe(b.url, ['p2m/#'], { protocolVersion: 5 });
    cleanups.push(() => sub.close());
    const l = link({ url: b.url, base_topic: 'p2m', protocol_version: version, client_id: `p2m-link-v${version}` });
    await l.start();
    assert.equal(l.connected, true);
    assert.equal(l.baseTopic, 'p2m');

    let props: unknown;
    sub.client.on('message', (topic, _p, packet) => { if (topic === 'p2m/alert') props = packet.properties?.userProperties; });
    await l.publish('p2m/alert', 'hello', { qos: 1, properties: { userProperties: { mailbox: 'nvr' } } });
    await l.publish('p2m/q2', Buffer.from([0, 1, 2]), { qos: 2 });
    await l.publish('p2m/q0', 'zero', { qos: 0 });
    const got = await sub.waitFor((m) => m.topic === 'p2m/alert', 3_000);
    assert.equal(got.text, 'hello');
    assert.deepEqual((await sub.waitFor((m) => m.topic === 'p2m/q2', 3_000)).payload, Buffer.from([0, 1, 2]));
    await sub.waitFor((m) => m.topic === 'p2m/q0', 3_000);
    if (version === 5) assert.deepEqual({ ...(props as object) }, { mailbox: 'nvr' }, 'user properties carried on MQTT 5');
    else assert.equal(props, undefined, 'no user properties on 3.1.1');

    const received: string[] = [];
    await l.subscribe('p2m/in/+', (topic, payload) => received.push(`${topic}=${payload}`));
    await sub.client.publishAsync('p2m/in/x', 'cmd', { qos: 1 });
    await sub.client.publishAsync('p2m/other', 'no', { qos: 1 });
    const deadline = Date.now() + 3_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(received, ['p2m/in/x=cmd']);

    const t0 = Date.now();
    await l.stop();
    assert.ok(Date.now() - t0 < 3_500, 'stop is bounded');
    assert.equal(l.connected, false);
    const off = await sub.waitFor((m) => m.topic === 'p2m/bridge/state', 3_000);
    assert.deepEqual(off.json, { state: 'offline' });
    const retained = await subscribe(b.url, ['p2m/bridge/state']);
    cleanups.push(() => retained.close());
    const r = await retained.waitFor((m) => m.topic === 'p2m/bridge/state', 3_000);
    assert.equal(r.retain, true);
    assert.deepEqual(r.json, { state: 'offline' });
    await assert.rejects(l.publish('p2m/x', 'late'), (e: MqttLinkError) => e.code === 'MQTT_STOPPED');
  });
}

test('publish while offline rejects at once with MQTT_OFFLINE; start resolves after connect_timeout when no broker', T, async () => {
  const b = await broker();
  const port = b.port;
  await b.stop(); // nothing listens there now
  const l = link({ url: `mqtt://127.0.0.1:${port}`, connect_timeout: 800 });
  const t0 = Date.now();
  await l.start();
  assert.ok(Date.now() - t0 >= 700 && Date.now() - t0 < 3_000, 'start waited about connect_timeout');
  assert.equal(l.connected, false);
  const t1 = Date.now();
  await assert.rejects(l.publish('x', 'y'), (e: unknown) => e instanceof MqttLinkError && e.code === 'MQTT_OFFLINE' && e.retryable);
  assert.ok(Date.now() - t1 < 100, 'rejected quickly');
  // The broker comes back on the same port: the link reconnects on its own (maybe before restart() returns).
  const reconnected = waitEvent(l, 'connect', 30_000);
  await b.restart();
  await reconnected;
  assert.equal(l.connected, true);
  await l.publish('x', 'y', { qos: 1 });
});

test('username/password: wrong password keeps retrying without throwing, right one connects; password never logged', T, async () => {
  const b = await broker({ users: [{ user: 'agent', pass: 's3cret-pa55' }] });
  const lines: string[] = [];
  const bad = link({ url: b.url, username: 'agent', password: 'wrong-pa55word', connect_timeout: 700 }, lines);
  await bad.start();
  assert.equal(bad.connected, false);
  await bad.stop();
  const good = link({ url: b.url, username: 'agent', password: 's3cret-pa55' }, lines);
  await good.start();
  assert.equal(good.connected, true);
  await good.publish('t', 'x');
  await good.stop();
  const log = lines.join('\n');
  assert.match(log, /Not authorized|Bad user name or password|refused/i, 'auth failure is logged');
  assert.doesNotMatch(log, /s3cret-pa55|wrong-pa55word/);
});

test('mqtts with ca_file verifies the broker; without the CA it does not connect; unreadable ca_file rejects naming the key', T, async () => {
  const b = await broker({ tls: true });
  assert.ok(b.tlsUrl && b.caFile);
  const ok = link({ url: b.tlsUrl, ca_file: b.caFile });
  await ok.start();
  assert.equal(ok.connected, true);
  await ok.publish('tls/x', 'secure', { qos: 1 });
  await ok.stop();

  const lines: string[] = [];
  const untrusted = link({ url: b.tlsUrl, connect_timeout: 800 }, lines);
  await untrusted.start();
  assert.equal(untrusted.connected, false, 'CA verification is on');
  assert.match(lines.join('\n'), /certificate/i);
  await untrusted.stop();

  const missing = link({ url: b.tlsUrl, ca_file: '/nonexistent/ca.pem' });
  await assert.rejects(missing.start(), (e: unknown) =>
    e instanceof MqttLinkError && e.code === 'MQTT_SETTINGS' && /mqtt\.ca_file/.test(e.message) && /ENOENT/.test(e.message));
  const halfCert = link({ url: b.tlsUrl, ca_file: b.caFile, cert_file: b.caFile });
  await assert.rejects(halfCert.start(), /mqtt\.key_file/);
});

test('TLS client certificate: broker requiring a cert accepts cert_file/key_file and refuses a client without', T, async () => {
  const b = await broker({ tls: true, extraConf: 'require_certificate true' });
  assert.ok(b.tlsUrl && b.caFile && b.certs);
  const client = await makeWrongNameCert(path.dirname(b.certs.caFile), 'pop2mqtt-client');
  const withCert = link({ url: b.tlsUrl, ca_file: b.caFile, cert_file: client.certFile, key_file: client.keyFile });
  await withCert.start();
  assert.equal(withCert.connected, true);
  await withCert.publish('tls/client', 'ok');
  await withCert.stop();
  const without = link({ url: b.tlsUrl, ca_file: b.caFile, connect_timeout: 800 });
  await without.start();
  assert.equal(without.connected, false);
});

test('websockets: ws:// URL connects and publishes', T, async () => {
  const b = await broker({ websockets: true });
  assert.ok(b.wsUrl);
  const sub = await subscribe(b.url, ['ws/#']);
  cleanups.push(() => sub.close());
  const l = link({ url: b.wsUrl, protocol_version: 5 });
  await l.start();
  assert.equal(l.connected, true);
  await l.publish('ws/x', 'over websockets', { qos: 1 });
  assert.equal((await sub.waitFor((m) => m.topic === 'ws/x', 3_000)).text, 'over websockets');
});

test('last will: SIGKILL of the agent process leaves bridge/state offline (retained)', T, async () => {
  const b = await broker();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-will-'));
  const script = path.join(dir, 'agent.mts');
  const linkUrl = pathToFileURL(path.join(repoRoot, 'src/mqtt/link.ts')).href;
  await writeFile(script, [
    `import { MqttLink } from ${JSON.stringify(linkUrl)};`,
    `const l = new MqttLink({ url: ${JSON.stringify(b.url)}, base_topic: 'willtest' }, { version: '1' });`,
    `await l.start();`,
    `await l.publish('willtest/bridge/state', JSON.stringify({ state: 'online' }), { qos: 1, retain: true });`,
    `process.stdout.write('ready\\n');`,
    `setInterval(() => {}, 1000);`,
  ].join('\n'));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child not ready: ${stderr}`)), 15_000);
    child.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(t); resolve(); } });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`child exited ${code}: ${stderr}`)); });
  });
  const sub = await subscribe(b.url, ['willtest/bridge/state']);
  cleanups.push(() => sub.close());
  assert.deepEqual((await sub.waitFor((m) => m.retain, 3_000)).json, { state: 'online' });
  child.kill('SIGKILL');
  const off = await sub.waitFor((m) => (m.json as { state?: string } | undefined)?.state === 'offline', 5_000);
  assert.equal(off.topic, 'willtest/bridge/state');
  const later = await subscribe(b.url, ['willtest/bridge/state']);
  cleanups.push(() => later.close());
  const r = await later.waitFor(() => true, 3_000);
  assert.equal(r.retain, true, 'the will is retained');
  assert.deepEqual(r.json, { state: 'offline' });
});

/** A TCP relay in front of the broker that can swallow the broker's answers and cut every connection. */
async function relay(target: number) {
  const sockets = new Set<net.Socket>();
  let swallow = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => { if (!swallow) client.write(d); });
    const close = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('close', close); upstream.on('close', close);
    client.on('error', close); upstream.on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    setSwallow(v: boolean) { swallow = v; },
    cutAll() { for (const s of sockets) s.destroy(); },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

test('connection lost before PUBACK: publish rejects with MQTT_DISCONNECTED, link goes offline, reconnects with backoff, MQTT.js does not resend it', T, async () => {
  const b = await broker();
  const r = await relay(b.port);
  cleanups.push(() => r.close());
  const sub = await subscribe(b.url, ['lost/#']);
  cleanups.push(() => sub.close());
  const l = link({ url: `mqtt://127.0.0.1:${r.port}`, reconnect: { min: 200, max: 400 } });
  await l.start();
  assert.equal(l.connected, true);
  r.setSwallow(true); // the broker's PUBACK never reaches the agent
  const pending = l.publish('lost/x', 'maybe', { qos: 1 });
  let settled = false;
  pending.then(() => { settled = true; }, () => { settled = true; });
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(settled, false, 'no PUBACK yet, so not resolved');
  const offline = waitEvent(l, 'offline', 3_000);
  r.cutAll();
  await assert.rejects(pending, (e: unknown) => e instanceof MqttLinkError && e.code === 'MQTT_DISCONNECTED' && e.retryable);
  await offline;
  assert.equal(l.connected, false);
  r.setSwallow(false);
  await waitEvent(l, 'connect', 5_000);
  await l.publish('lost/y', 'after reconnect', { qos: 1 });
  // The broker had lost/x (only its PUBACK was swallowed); a replay by MQTT.js would arrive again before lost/y.
  await sub.waitFor((m) => m.topic === 'lost/y', 5_000);
  assert.deepEqual(sub.messages.map((m) => m.topic), ['lost/x', 'lost/y'], 'the retry belongs to the outbox, not to MQTT.js');
  const t0 = Date.now();
  await l.stop();
  assert.ok(Date.now() - t0 < 3_500, 'stop does not wait for the lost ack');
});

test('subscriptions are renewed after the broker restarts', T, async () => {
  const b = await broker({ persistence: false });
  const l = link({ url: b.url, reconnect: { min: 100, max: 300 } });
  await l.start();
  const got: string[] = [];
  await l.subscribe('renew/#', (t, p) => got.push(`${t}=${p}`));
  const reconnected = waitEvent(l, 'connect', 30_000); // listening first: the link may reconnect before restart() returns
  await b.restart();
  await reconnected;
  const pub = await subscribe(b.url, ['unused/x']);
  cleanups.push(() => pub.close());
  await pub.client.publishAsync('renew/a', '1', { qos: 1 });
  const deadline = Date.now() + 3_000;
  while (got.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  assert.deepEqual(got, ['renew/a=1']);
});
