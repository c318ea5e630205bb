// Integration tests of the Bridge against a real Mosquitto: retained state, request/response, and with the Home Assistant discovery announcer on its retained hook: republish after broker restart and HA restart, stale-entity removal.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { until } from '../support/lab.js';
import { retainedNow, subscribe, type ReceivedMessage, type Subscriber } from '../support/mqtt-subscriber.js';
import { MqttLink } from '../../src/mqtt/link.js';
import { Bridge } from '../../src/mqtt/bridge.js';
import { buildDiscovery } from '../../src/homeassistant/discovery.js';
import { DiscoveryAnnouncer } from '../../src/homeassistant/announcer.js';
import type { HaModel } from '../../src/homeassistant/types.js';
import type { BridgeHandlers, BridgeInfo, MailboxStatus } from '../../src/mqtt/types.js';
import { createLogger, registerCommandToken, registerSecret } from '../../src/log.js';

const T = { timeout: 40_000 };
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const STATUS: MailboxStatus = {
  last_poll: '2024-05-01T10:00:00.000Z', result: 'ok', messages: 3, new: 1, alerts: 1, alerts_today: 2,
  bytes_last_poll: 512, bytes_total: 4096, next_poll: '2024-05-01T10:05:00.000Z', connection_problem: false,
};

interface Harness {
  broker: MosquittoServer;
  link: MqttLink;
  bridge: Bridge;
  /** undefined with discovery off */
  announcer: DiscoveryAnnouncer | undefined;
  calls: { poll: Array<string | undefined>; testRule: string[] };
  model: HaModel;
  /** max number of poll handlers running at once */
  pollConcurrency: { now: number; max: number };
  handlers: BridgeHandlers;
  sub: Subscriber;
  logs: string[];
}

async function setup(opts: { discovery?: boolean; persistence?: boolean; pollMs?: number; broker?: MosquittoServer; model?: HaModel; scanMs?: number } = {}): Promise<Harness> {
  const broker = opts.broker ?? (await startMosquitto({ persistence: opts.persistence ?? true }));
  if (!opts.broker) cleanups.push(() => broker.stop());
  const sub = await subscribe(broker.url, ['pop2mqtt/#', 'homeassistant/#']);
  cleanups.push(() => sub.close());
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', timestamps: false, write: (l) => logs.push(l) });
  const link = new MqttLink({ url: broker.url, reconnect: { min: 100, max: 300 }, connect_timeout: 3_000 }, { logger, version: '1.0.0' });
  cleanups.push(() => link.stop());
  const model: HaModel = opts.model ?? {
    mailboxes: [{ id: 'nvr', name: 'NVR', host: 'mail.example' }, { id: 'ups', host: 'mail.example' }],
    rules: [{ name: 'gate', event_types: ['motion'], image: {} }, { name: 'ups_alarm' }],
  };
  const calls = { poll: [] as Array<string | undefined>, testRule: [] as string[] };
  const pollConcurrency = { now: 0, max: 0 };
  const handlers: BridgeHandlers = {
    async poll(mailbox) {
      calls.poll.push(mailbox);
      pollConcurrency.now++;
      pollConcurrency.max = Math.max(pollConcurrency.max, pollConcurrency.now);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 10));
      pollConcurrency.now--;
      if (mailbox === 'nope') throw new Error('unknown mailbox "nope"');
      return [{ mailbox: mailbox ?? 'all', ok: true }];
    },
    async reload() { throw new Error('config.yaml:3: mailboxes[0].host: required'); },
    status: () => ({ version: '1.0.0', mailboxes: { nvr: STATUS } }),
    async testRule(raw) { calls.testRule.push(raw.toString()); return { matched: ['gate'] }; },
    info: (): BridgeInfo => ({
      version: '1.0.0', config_version: 1,
      mailboxes: model.mailboxes.map((m) => ({ id: m.id, host: m.host ?? '', name: m.name })),
      rules: model.rules.map((r) => ({ name: r.name })),
    }),
  };
  // As the agent wires its Home Assistant extension: discovery after the bridge's retained state, in the same run.
  let announcer: DiscoveryAnnouncer | undefined;
  const bridge = new Bridge(link, handlers, { logger, retained: (full) => announcer?.publish(full) ?? Promise.resolve() });
  if (opts.discovery ?? true) {
    announcer = new DiscoveryAnnouncer(link, {
      model: () => model, ha: { discovery: true }, version: '1.0.0', logger, scanMs: opts.scanMs ?? 400, republish: (r) => bridge.republish(r),
    });
    await announcer.start();
    cleanups.push(() => announcer!.stop());
  }
  cleanups.push(() => bridge.stop());
  await link.start();
  await bridge.start();
  return { broker, link, bridge, announcer, calls, model, pollConcurrency, handlers, sub, logs };
}

const isTopic = (t: string) => (m: ReceivedMessage) => m.topic === t;

async function request(h: Harness, cmd: string, payload: string | Buffer, match: (m: ReceivedMessage) => boolean = () => true): Promise<ReceivedMessage> {
  await h.sub.client.publishAsync(`pop2mqtt/bridge/request/${cmd}`, payload, { qos: 1 });
  return h.sub.waitFor((m) => m.topic === `pop2mqtt/bridge/response/${cmd}` && match(m), 5_000);
}

test('start: online state, info and discovery are published retained; mailbox status retained and readable later', T, async () => {
  const h = await setup();
  await h.bridge.publishMailboxStatus('nvr', STATUS);
  const expected = buildDiscovery(h.model, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.0.0' }).messages;
  // A fresh subscriber sees everything as retained.
  const late = await subscribe(h.broker.url, ['pop2mqtt/#', 'homeassistant/#']);
  cleanups.push(() => late.close());
  await late.waitForCount(expected.length + 3, 5_000, (m) => m.retain);
  assert.deepEqual(late.on('pop2mqtt/bridge/state')[0]!.json, { state: 'online' });
  const info = late.on('pop2mqtt/bridge/info')[0]!.json as BridgeInfo;
  assert.equal(info.version, '1.0.0');
  assert.deepEqual(info.mailboxes.map((m) => m.id), ['nvr', 'ups']);
  assert.deepEqual(late.on('pop2mqtt/nvr/status')[0]!.json, STATUS);
  for (const e of expected) {
    const got = late.on(e.topic);
    assert.equal(got.length, 1, `${e.topic} retained once`);
    assert.equal(got[0]!.retain, true);
    assert.equal(got[0]!.qos, 1);
    assert.deepEqual(got[0]!.json, e.payload);
  }
  assert.deepEqual(h.announcer!.announcedTopics().sort(), expected.map((e) => e.topic).sort());
});

test('requests: answered on bridge/response/<cmd>, transaction echoed, errors reported, malformed JSON never crashes', T, async () => {
  const h = await setup({ discovery: false });
  const poll = await request(h, 'poll', JSON.stringify({ mailbox: 'nvr', transaction: 'abc' }));
  assert.deepEqual(poll.json, { status: 'ok', data: [{ mailbox: 'nvr', ok: true }], transaction: 'abc' });
  assert.deepEqual(h.calls.poll, ['nvr']);

  const all = await request(h, 'poll', '', (m) => (m.json as { transaction?: unknown }).transaction === undefined);
  assert.deepEqual(all.json, { status: 'ok', data: [{ mailbox: 'all', ok: true }] });

  const bad = await request(h, 'poll', '{"mailbox": ', (m) => (m.json as { status?: string }).status === 'error');
  assert.equal((bad.json as { error: string }).error, 'malformed JSON payload');

  const failing = await request(h, 'poll', '{"mailbox":"nope","transaction":2}', (m) => (m.json as { transaction?: unknown }).transaction === 2);
  assert.deepEqual(failing.json, { status: 'error', data: {}, error: 'unknown mailbox "nope"', transaction: 2 });

  const reload = await request(h, 'reload', '{"transaction":7}');
  assert.deepEqual(reload.json, { status: 'error', data: {}, error: 'config.yaml:3: mailboxes[0].host: required', transaction: 7 });

  const status = await request(h, 'status', '');
  assert.deepEqual((status.json as { data: unknown }).data, { version: '1.0.0', mailboxes: { nvr: STATUS } });

  const raw = 'From: cam@example\r\nSubject: Motion\r\n\r\nhello\r\n';
  const tr = await request(h, 'test_rule', raw);
  assert.deepEqual(tr.json, { status: 'ok', data: { matched: ['gate'] } });
  const trJson = await request(h, 'test_rule', JSON.stringify({ message: raw, transaction: 'x' }), (m) => (m.json as { transaction?: unknown }).transaction === 'x');
  assert.equal((trJson.json as { status: string }).status, 'ok');
  assert.deepEqual(h.calls.testRule, [raw, raw]);

  const unknown = await request(h, 'explode', '{}');
  assert.equal((unknown.json as { status: string }).status, 'error');
  assert.match((unknown.json as { error: string }).error, /unknown command/);

  // Still alive and answering after all that.
  const again = await request(h, 'status', '{"transaction":"last"}', (m) => (m.json as { transaction?: unknown }).transaction === 'last');
  assert.equal((again.json as { status: string }).status, 'ok');
});

test('requests of one command run one at a time; a flood beyond the queue is answered busy', T, async () => {
  const h = await setup({ discovery: false, pollMs: 150 });
  for (let i = 0; i < 8; i++) await h.sub.client.publishAsync('pop2mqtt/bridge/request/poll', JSON.stringify({ transaction: i }), { qos: 1 });
  const responses = await h.sub.waitForCount(8, 10_000, isTopic('pop2mqtt/bridge/response/poll'));
  assert.equal(h.pollConcurrency.max, 1, 'never two polls at once');
  const ok = responses.filter((r) => (r.json as { status: string }).status === 'ok');
  const busy = responses.filter((r) => /busy/.test((r.json as { error?: string }).error ?? ''));
  assert.equal(ok.length + busy.length, 8);
  assert.ok(busy.length >= 1, 'some requests were refused');
  assert.ok(ok.length >= 2 && ok.length <= 6, `queue bounded (ok=${ok.length})`);
  assert.equal(h.calls.poll.length, ok.length);
});

test('Home Assistant "Poll now" button payload on its command_topic polls that mailbox', T, async () => {
  const h = await setup();
  const button = await h.sub.waitFor(isTopic('homeassistant/button/pop2mqtt/mailbox_ups_poll/config'), 5_000);
  const cfg = button.json as { command_topic: string; payload_press: string };
  await h.sub.client.publishAsync(cfg.command_topic, cfg.payload_press, { qos: 1 });
  await h.sub.waitFor(isTopic('pop2mqtt/bridge/response/poll'), 5_000);
  assert.deepEqual(h.calls.poll, ['ups']);
});

test('broker restart without persistence: state, info, mailbox status and discovery are republished', T, async () => {
  const h = await setup({ persistence: false });
  await h.bridge.publishMailboxStatus('nvr', STATUS);
  const expected = buildDiscovery(h.model, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.0.0' }).messages;
  await h.sub.close();
  // Listening first: the link may reconnect before restart() returns.
  const reconnected = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reconnect')), 30_000);
    h.link.once('connect', () => { clearTimeout(t); resolve(); });
  });
  await h.broker.restart(); // all retained messages are gone now
  await reconnected;
  const late = await subscribe(h.broker.url, ['pop2mqtt/#', 'homeassistant/#']);
  cleanups.push(() => late.close());
  // Retained, or live when the republish is still running as we subscribe.
  await late.waitForCount(expected.length + 3, 8_000);
  assert.deepEqual(late.on('pop2mqtt/bridge/state').at(-1)!.json, { state: 'online' });
  assert.ok(late.on('pop2mqtt/bridge/info').length >= 1);
  assert.deepEqual(late.on('pop2mqtt/nvr/status').at(-1)!.json, STATUS);
  for (const e of expected) assert.ok(late.on(e.topic).length >= 1, `${e.topic} republished`);
});

test('homeassistant/status online: discovery is announced again', T, async () => {
  const h = await setup();
  const expected = buildDiscovery(h.model, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.0.0' }).messages;
  await h.sub.waitForCount(expected.length, 5_000, (m) => m.topic.endsWith('/config'));
  h.sub.clear();
  await h.sub.client.publishAsync('homeassistant/status', 'offline', { qos: 1 });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(h.sub.messages.filter((m) => m.topic.endsWith('/config')).length, 0, '"offline" does not trigger');
  await h.sub.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
  const again = await h.sub.waitForCount(expected.length, 5_000, (m) => m.topic.endsWith('/config'));
  assert.deepEqual(new Set(again.map((m) => m.topic)), new Set(expected.map((e) => e.topic)));
});

test('removed entities: refresh() clears configs and statuses of removed rules/mailboxes; start clears stale retained configs', T, async () => {
  const h = await setup();
  await h.bridge.publishMailboxStatus('ups', STATUS);
  const before = buildDiscovery(h.model, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.0.0' }).messages;
  await h.sub.waitForCount(before.length, 5_000, (m) => m.topic.endsWith('/config'));
  // Reload: mailbox ups and rule ups_alarm disappear.
  h.model.mailboxes = h.model.mailboxes.filter((m) => m.id !== 'ups');
  h.model.rules = h.model.rules.filter((r) => r.name !== 'ups_alarm');
  const afterModel = buildDiscovery(h.model, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.0.0' }).messages;
  const removed = before.filter((b) => !afterModel.some((a) => a.topic === b.topic)).map((b) => b.topic);
  assert.ok(removed.length >= 9, 'mailbox entities and the rule event are removed');
  h.sub.clear();
  await h.bridge.refresh();
  const empties = await h.sub.waitForCount(removed.length + 1, 5_000, (m) => m.payload.length === 0);
  assert.deepEqual(new Set(empties.map((m) => m.topic)), new Set([...removed, 'pop2mqtt/ups/status']));
  assert.equal(h.sub.messages.filter((m) => m.topic.endsWith('/config') && m.payload.length > 0).length, 0, 'unchanged configs not republished');
  assert.ok(h.sub.on('pop2mqtt/bridge/info').length === 1, 'info republished');

  // A stale config from an earlier run (left retained on the broker) is cleared at the next start.
  await h.sub.client.publishAsync('homeassistant/sensor/pop2mqtt/mailbox_old_last_poll/config', JSON.stringify({ unique_id: 'pop2mqtt_mailbox_old_last_poll' }), { qos: 1, retain: true });
  await h.sub.client.publishAsync('homeassistant/sensor/othertool/x/config', '{"unique_id":"other"}', { qos: 1, retain: true });
  await h.announcer!.stop();
  await h.bridge.stop();
  await h.link.stop();
  const h2 = await setup({ broker: h.broker, model: h.model });
  await h2.sub.waitFor((m) => m.topic === 'homeassistant/sensor/pop2mqtt/mailbox_old_last_poll/config' && m.payload.length === 0, 5_000);
  const check = await subscribe(h.broker.url, ['homeassistant/#']);
  cleanups.push(() => check.close());
  await check.waitForCount(afterModel.length + 1, 5_000, (m) => m.retain);
  await new Promise((r) => setTimeout(r, 200));
  const topics = new Set(check.messages.map((m) => m.topic));
  assert.equal(topics.has('homeassistant/sensor/pop2mqtt/mailbox_old_last_poll/config'), false, 'stale config gone');
  assert.equal(topics.has('homeassistant/sensor/othertool/x/config'), true, 'other tools untouched');
  for (const e of afterModel) assert.ok(topics.has(e.topic));
});

test('withdraw (a reload switched discovery off or moved it): every config cleared, the snapshots only when asked; nothing announced once stopped; offline a warning, no error', T, async () => {
  const h = await setup({ persistence: false });
  const configs = buildDiscovery(h.model, { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.0.0' }).messages.map((m) => m.topic);
  await h.sub.waitForCount(configs.length, 5_000, (m) => m.topic.endsWith('/config'));
  const IMAGE = 'pop2mqtt/rule/gate/image';
  await h.sub.client.publishAsync(IMAGE, Buffer.from('jpeg bytes'), { qos: 1, retain: true });
  const emptiedSince = async (from: number, topics: string[]) => {
    for (const t of topics) await h.sub.waitFor((m) => m.topic === t && m.payload.length === 0 && h.sub.messages.indexOf(m) >= from, 5_000);
  };
  const announcerOn = async () => {
    const logger = createLogger({ level: 'debug', timestamps: false, write: (l) => h.logs.push(l) });
    const a = new DiscoveryAnnouncer(h.link, { model: () => h.model, ha: { discovery: true }, version: '1.0.0', scanMs: 200, logger, republish: async () => {} });
    await a.start();
    cleanups.push(() => a.stop());
    await a.publish(true);
    return a;
  };

  // A new prefix: the configs go, the snapshot stays (the image entity under the new prefix shows it).
  let from = h.sub.messages.length;
  await h.announcer!.stop();
  await h.announcer!.withdraw({ images: false });
  await emptiedSince(from, configs);
  let retained = await retainedNow(h.broker.url, ['pop2mqtt/#', 'homeassistant/#']);
  assert.deepEqual([...retained.keys()].filter((t) => t.endsWith('/config')), []);
  assert.ok(retained.has(IMAGE), 'snapshot kept');
  // Stopped, it announces nothing more: the bridge's republish runs its retained hook (this announcer) to the end.
  from = h.sub.messages.length;
  await h.bridge.republish('test');
  assert.ok(h.sub.messages.length > from, 'bridge state republished');
  assert.deepEqual(h.sub.messages.slice(from).filter((m) => m.topic.endsWith('/config')).map((m) => m.topic), []);

  // Switched off: the configs and the snapshots their image entities showed go.
  const second = await announcerOn();
  from = h.sub.messages.length;
  await second.stop();
  await second.withdraw({ images: true });
  await emptiedSince(from, [...configs, IMAGE]);
  retained = await retainedNow(h.broker.url, ['pop2mqtt/#', 'homeassistant/#']);
  assert.deepEqual([...retained.keys()].filter((t) => t.endsWith('/config') || t === IMAGE), []);

  // Broker gone: nothing can be cleared; said in the log, and the reload goes on (no error).
  const third = await announcerOn();
  await h.sub.close();
  await h.broker.kill();
  await until(() => !h.link.connected, 10_000, 'link down');
  await third.stop();
  await third.withdraw({ images: true });
  assert.ok(h.logs.some((l) => /Home Assistant configs not cleared/.test(l) && /broker not connected/.test(l)), h.logs.slice(-5).join('\n'));
});

test('command tokens never reach MQTT, and a common-word password never corrupts a response', T, async () => {
  const h = await setup({ discovery: false });
  registerCommandToken('hunter2-cmd-token-77');
  registerSecret('online');
  h.handlers.status = () => ({ note: 'subject: open hunter2-cmd-token-77', state: 'online' });
  const r = await request(h, 'status', '');
  assert.doesNotMatch(r.text, /hunter2-cmd-token-77/);
  assert.deepEqual((r.json as { data: unknown }).data, { note: 'subject: open ***', state: 'online' });
});

test('clean stop: bridge stops answering, link publishes offline retained', T, async () => {
  const h = await setup({ discovery: false });
  await h.bridge.stop();
  await h.link.stop();
  const off = await h.sub.waitFor((m) => m.topic === 'pop2mqtt/bridge/state' && (m.json as { state: string }).state === 'offline', 5_000);
  assert.ok(off);
  const late = await subscribe(h.broker.url, ['pop2mqtt/bridge/state']);
  cleanups.push(() => late.close());
  const r = await late.waitFor(() => true, 3_000);
  assert.equal(r.retain, true);
  assert.deepEqual(r.json, { state: 'offline' });
});
