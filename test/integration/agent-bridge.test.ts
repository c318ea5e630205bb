// End-to-end: the real daemon (`pop2mqtt run`) against real Dovecot and Mosquitto — bridge topics, requests, reload, Home Assistant discovery, availability.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startLab, minimalConfig, runAgent, until, USER, PASS, type Lab, type RunningAgent } from '../support/lab.js';
import { makeMail, fakeJpeg } from '../support/maildir.js';
import { subscribe, type ReceivedMessage, type Subscriber } from '../support/mqtt-subscriber.js';
import { VERSION } from '../../src/version.js';

const T = { timeout: 90_000 };
const HA = 'homeassistant';

let lab: Lab;
let configSeq = 0;

before(async () => {
  // No persistence: a broker restart forgets every retained message, so whatever is retained afterwards was republished by the agent.
  lab = await startLab({ mosquitto: { persistence: false } });
});
after(async () => {
  await lab?.stop();
});

// ------------------------------------------------------------------ config and mail

const RULE_CAMERA = `  - name: camera-motion
    when:
      from: { contains: "@nvr.local" }
      subject: { regex: '^ALARM: (?<event>\\w+) (?<camera>Camera \\d+)$' }
    publish:
      topic: "alerts/{{camera}}"
    event_types: ["Motion"]
`;
const RULE_GATE = `  - name: gate-snapshot
    when:
      from: { address: { is: "cam@gate.local" } }
    publish:
      topic: "alerts/gate"
    attachments:
      topic: "snap/gate"
      types: ["image/jpeg"]
`;
const RULE_UPS = `  - name: ups
    when:
      from: { address: { is: "ups@power.local" } }
    publish:
      topic: "alerts/ups"
`;
const RULE_DOOR = `  - name: door
    when:
      from: { address: { is: "door@alarm.local" } }
    publish:
      topic: "alerts/door"
`;

/**
 * A config with discovery on; polls happen only on request (the schedule fires once a year). These tests poll again
 * within seconds on purpose, so requested polls are not coalesced (mqtt.min_request_interval: 0; see mqtt-limits).
 */
function agentConfig(rules = RULE_CAMERA + RULE_GATE + RULE_UPS, stateDir = `./state-${++configSeq}`): string {
  return minimalConfig(lab, {
    rules, stateDir, existing: 'process', keep: true, schedule: '0 0 1 1 *',
    extra: `log_level: debug\nhomeassistant:\n  discovery: true\n`,
  }).replace('  base_topic: pop2mqtt\n', '  base_topic: pop2mqtt\n  min_request_interval: 0\n');
}

const alarmMail = (cam: number, tag: string) =>
  makeMail({ from: 'NVR <nvr@nvr.local>', subject: `ALARM: Motion Camera ${cam}`, messageId: `<${tag}@nvr.local>`, body: 'motion\r\n' });
const fromMail = (from: string, tag: string) => makeMail({ from, subject: `Notice ${tag}`, messageId: `<${tag}@example.test>` });

/** The 13 discovery configs of agentConfig(): 1 agent button, an event per rule, an image for gate-snapshot, 8 per mailbox. */
const MAILBOX_OBJECTS = [
  'sensor/pop2mqtt/mailbox_home_last_poll', 'sensor/pop2mqtt/mailbox_home_new_messages', 'sensor/pop2mqtt/mailbox_home_messages',
  'sensor/pop2mqtt/mailbox_home_alerts_today', 'sensor/pop2mqtt/mailbox_home_bytes_total', 'sensor/pop2mqtt/mailbox_home_bytes_last_poll',
  'binary_sensor/pop2mqtt/mailbox_home_connection_problem', 'button/pop2mqtt/mailbox_home_poll',
];
const AGENT_OBJECTS = [
  'button/pop2mqtt/poll_all', 'event/pop2mqtt/rule_camera-motion_event', 'event/pop2mqtt/rule_gate-snapshot_event',
  'image/pop2mqtt/rule_gate-snapshot_image', 'event/pop2mqtt/rule_ups_event',
];
const cfgTopic = (o: string) => `${HA}/${o}/config`;
const EXPECTED_DISCOVERY = [...AGENT_OBJECTS, ...MAILBOX_OBJECTS].map(cfgTopic).sort();
const isDiscovery = (m: ReceivedMessage) => m.topic.startsWith(`${HA}/`) && m.topic.endsWith('/config');

// ------------------------------------------------------------------ helpers

async function resetMailbox(): Promise<void> {
  const md = lab.dovecot.maildir(USER);
  for (const d of ['new', 'cur']) for (const f of await readdir(path.join(md, d))) await rm(path.join(md, d, f));
}

/** Restart the broker (no persistence: it comes back empty) and give each test an empty mailbox. */
async function freshWorld(): Promise<void> {
  await lab.mosquitto.restart();
  await resetMailbox();
}

async function watch(topics = ['pop2mqtt/#', `${HA}/#`]): Promise<Subscriber> {
  const s = await subscribe(lab.mosquitto.url, topics);
  lab.defer(() => s.close());
  return s;
}

async function startAgent(yaml: string): Promise<RunningAgent & { config: string }> {
  const config = await lab.writeConfig(yaml, `agent-${configSeq}.yaml`);
  return { ...(await runAgent(lab, config)), config };
}

let txSeq = 0;
/** Publish a request and wait for its response (matched by transaction when the payload is JSON with one). */
async function request(sub: Subscriber, cmd: string, payload: string | Buffer | Record<string, unknown>, timeoutMs = 20_000): Promise<{ status: string; data?: any; error?: string; transaction?: unknown }> {
  let body: string | Buffer;
  let tx: string | undefined;
  if (typeof payload === 'object' && !Buffer.isBuffer(payload)) {
    tx = typeof payload.transaction === 'string' ? payload.transaction : `tx-${++txSeq}`;
    body = JSON.stringify({ ...payload, transaction: tx });
  } else body = payload;
  const already = sub.on(`pop2mqtt/bridge/response/${cmd}`).length;
  await sub.client.publishAsync(`pop2mqtt/bridge/request/${cmd}`, body, { qos: 1 });
  const got = await sub.waitFor((m) => m.topic === `pop2mqtt/bridge/response/${cmd}` &&
    (tx !== undefined ? (m.json as { transaction?: unknown })?.transaction === tx : sub.on(m.topic).indexOf(m) >= already), timeoutMs);
  return got.json as { status: string; data?: any; error?: string; transaction?: unknown };
}

/** Retained messages a new subscriber gets (waits until `expectTopics` are all there, then a little longer for stragglers). */
async function retainedSnapshot(expectTopics: string[], topics = ['pop2mqtt/#', `${HA}/#`]): Promise<Map<string, ReceivedMessage>> {
  const s = await watch(topics);
  await until(() => expectTopics.every((t) => s.messages.some((m) => m.topic === t && m.retain)), 10_000, `retained ${expectTopics.join(', ')}`)
    .catch((err: Error) => {
      throw new Error(`${err.message}; retained so far: ${s.messages.filter((m) => m.retain).map((m) => m.topic).join(', ')}`);
    });
  await new Promise((r) => setTimeout(r, 300));
  await s.close();
  const out = new Map<string, ReceivedMessage>();
  for (const m of s.messages) if (m.retain) out.set(m.topic, m);
  return out;
}

type Json = Record<string, any>;

// ------------------------------------------------------------------ tests

test('start: bridge/state online and bridge/info retained (no credentials); discovery configs retained for every entity, tied to bridge/state', T, async () => {
  await freshWorld();
  const probe = await watch();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(probe.messages.length, 0, `the restarted broker keeps nothing retained: ${probe.messages.map((m) => m.topic).join(', ')}`);
  // Left over from an earlier run (a rule since deleted), and a config of another tool: the first goes, the second stays.
  const stale = cfgTopic('event/pop2mqtt/rule_gone_event');
  const foreign = cfgTopic('sensor/othertool/thing');
  await probe.client.publishAsync(stale, JSON.stringify({ name: 'gone', state_topic: 'pop2mqtt/rule/gone/event' }), { qos: 1, retain: true });
  await probe.client.publishAsync(foreign, JSON.stringify({ name: 'thing', state_topic: 'othertool/thing' }), { qos: 1, retain: true });
  // A deleted rule's image entity and the snapshot it showed; another tool's image under its own prefix stays.
  const staleImage = cfgTopic('image/pop2mqtt/rule_gone_image');
  const foreignImage = cfgTopic('image/pop2mqtt/rule_gone2_image');
  await probe.client.publishAsync(staleImage, JSON.stringify({ name: 'gone image', image_topic: 'pop2mqtt/rule/gone/image' }), { qos: 1, retain: true });
  await probe.client.publishAsync('pop2mqtt/rule/gone/image', fakeJpeg(300), { qos: 1, retain: true });
  await probe.client.publishAsync(foreignImage, JSON.stringify({ name: 'x', image_topic: 'othertool/cam/image' }), { qos: 1, retain: true });
  await probe.client.publishAsync('othertool/cam/image', fakeJpeg(300), { qos: 1, retain: true });
  const agent = await startAgent(agentConfig());
  const cleared = await probe.waitFor((m) => m.topic === stale && m.payload.length === 0, 5_000);
  assert.equal(cleared.payload.length, 0, 'the stale config is cleared with an empty payload');
  await probe.waitFor((m) => m.topic === 'pop2mqtt/rule/gone/image' && m.payload.length === 0, 5_000);
  const others = await retainedSnapshot(['othertool/cam/image'], ['othertool/#', 'pop2mqtt/rule/#']);
  assert.equal(others.has('pop2mqtt/rule/gone/image'), false, 'the stale snapshot is cleared');
  assert.ok(others.get('othertool/cam/image')!.payload.length > 0, 'an image outside our base topic is never touched');

  const snap = await retainedSnapshot(['pop2mqtt/bridge/state', 'pop2mqtt/bridge/info', ...EXPECTED_DISCOVERY]);
  assert.deepEqual(snap.get('pop2mqtt/bridge/state')!.json, { state: 'online' });

  const infoMsg = snap.get('pop2mqtt/bridge/info')!;
  const info = infoMsg.json as Json;
  assert.equal(info.version, VERSION);
  assert.deepEqual(info.mailboxes.map((m: Json) => [m.id, m.host]), [['home', '127.0.0.1']]);
  assert.deepEqual(info.rules.map((r: Json) => r.name), ['camera-motion', 'gate-snapshot', 'ups']);
  assert.doesNotMatch(infoMsg.text, /username|password/i);
  assert.ok(!infoMsg.text.includes(USER), 'the login name is not in bridge/info');
  for (const m of snap.values()) assert.ok(!m.text.includes(PASS), `password leaked on ${m.topic}`);

  assert.equal(snap.has(stale), false, 'no stale config left retained');
  assert.ok(snap.has(foreign), 'configs of other tools are left alone');
  const discovery = [...snap.values()].filter((m) => isDiscovery(m) && m.topic !== foreign);
  assert.deepEqual(discovery.map((m) => m.topic).sort(), EXPECTED_DISCOVERY, 'exactly the expected discovery configs');
  for (const m of discovery) {
    const c = m.json as Json;
    assert.equal(m.qos, 1, m.topic);
    const objectId = m.topic.split('/')[3];
    assert.equal(c.unique_id, `pop2mqtt_${objectId}`, m.topic);
    assert.equal(c.origin?.name, 'pop2mqtt', m.topic);
    assert.equal(c.origin?.sw_version, VERSION, m.topic);
    assert.deepEqual(c.availability.map((a: Json) => a.topic), ['pop2mqtt/bridge/state'], m.topic);
    assert.equal(c.availability[0].value_template, '{{ value_json.state }}');
    assert.equal(c.availability[0].payload_available, 'online');
    assert.equal(c.availability[0].payload_not_available, 'offline');
    assert.ok(!m.text.includes(PASS) && !m.text.includes(USER), `no credentials in ${m.topic}`);
  }
  const cfg = (o: string) => snap.get(cfgTopic(o))!.json as Json;

  // Devices: the agent, and the mailbox linked to it.
  const agentDevice = cfg('button/pop2mqtt/poll_all').device;
  assert.deepEqual(agentDevice.identifiers, ['pop2mqtt_bridge']);
  assert.equal(agentDevice.model, 'pop2mqtt agent');
  for (const o of AGENT_OBJECTS) assert.deepEqual(cfg(o).device.identifiers, ['pop2mqtt_bridge'], o);
  for (const o of MAILBOX_OBJECTS) {
    assert.deepEqual(cfg(o).device.identifiers, ['pop2mqtt_mailbox_home'], o);
    assert.equal(cfg(o).device.via_device, 'pop2mqtt_bridge', o);
    assert.equal(cfg(o).device.model, 'POP3 mailbox', o);
  }

  // Entities read and write the agent's real topics.
  assert.equal(cfg('event/pop2mqtt/rule_camera-motion_event').state_topic, 'pop2mqtt/rule/camera-motion/event');
  assert.deepEqual([...cfg('event/pop2mqtt/rule_camera-motion_event').event_types].sort(), ['Motion', 'alert']);
  assert.deepEqual(cfg('event/pop2mqtt/rule_ups_event').event_types, ['alert']);
  const image = cfg('image/pop2mqtt/rule_gate-snapshot_image');
  assert.equal(image.image_topic, 'pop2mqtt/rule/gate-snapshot/image');
  assert.equal(image.content_type, 'image/jpeg');
  assert.equal(cfg('button/pop2mqtt/poll_all').command_topic, 'pop2mqtt/bridge/request/poll');
  assert.equal(cfg('button/pop2mqtt/mailbox_home_poll').command_topic, 'pop2mqtt/bridge/request/poll');
  assert.deepEqual(JSON.parse(cfg('button/pop2mqtt/mailbox_home_poll').payload_press), { mailbox: 'home' });
  for (const o of MAILBOX_OBJECTS.filter((x) => !x.startsWith('button'))) assert.equal(cfg(o).state_topic, 'pop2mqtt/home/status', o);
  assert.equal(cfg('binary_sensor/pop2mqtt/mailbox_home_connection_problem').device_class, 'problem');
  assert.equal(cfg('sensor/pop2mqtt/mailbox_home_last_poll').device_class, 'timestamp');
  assert.equal(cfg('sensor/pop2mqtt/mailbox_home_bytes_total').unit_of_measurement, 'B');

  const ex = await agent.stop();
  assert.equal(ex.code, 0, agent.output());
});

test('poll by request: the mailbox button polls; alerts become HA events and the JPEG arrives byte-identical; status retained; unknown mailbox is an error', T, async () => {
  await freshWorld();
  const sub = await watch();
  const agent = await startAgent(agentConfig());
  const button = await sub.waitFor((m) => m.topic === cfgTopic('button/pop2mqtt/mailbox_home_poll'), 5_000);
  const cameraEventCfg = (await sub.waitFor((m) => m.topic === cfgTopic('event/pop2mqtt/rule_camera-motion_event'), 5_000)).json as Json;
  const gateEventCfg = (await sub.waitFor((m) => m.topic === cfgTopic('event/pop2mqtt/rule_gate-snapshot_event'), 5_000)).json as Json;

  const jpeg = fakeJpeg(30_000, 7);
  await lab.dovecot.deliverMany(USER, [
    alarmMail(1, 'cam1'),
    makeMail({ from: 'Gate <cam@gate.local>', subject: 'Gate motion', body: 'see snapshot\r\n', attachments: [{ filename: 'gate.jpg', contentType: 'image/jpeg', content: jpeg }] }),
    fromMail('Shop <news@shop.example>', 'news1'),
  ]);

  // Press the mailbox's "Poll now" button exactly as Home Assistant would: its payload on its command topic.
  const { command_topic, payload_press } = button.json as Json;
  const pressTx = JSON.stringify({ ...JSON.parse(payload_press), transaction: 't1' });
  await sub.client.publishAsync(command_topic, pressTx, { qos: 1 });
  const resp = (await sub.waitFor((m) => m.topic === 'pop2mqtt/bridge/response/poll', 30_000)).json as Json;
  assert.equal(resp.status, 'ok', JSON.stringify(resp));
  assert.equal(resp.transaction, 't1');
  assert.equal(resp.data.length, 1);
  assert.equal(resp.data[0].mailbox, 'home');
  assert.equal(resp.data[0].ok, true);
  assert.equal(resp.data[0].messages, 3);
  assert.equal(resp.data[0].new, 3);
  assert.equal(resp.data[0].alerts, 2);

  // The alerts on their rule topics.
  const alarm = await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/Camera 1', 10_000);
  assert.equal((alarm.json as Json).rule, 'camera-motion');
  await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/gate', 10_000);

  // HA events: event_type must be one the discovery config declared, or HA drops it.
  const camEvent = (await sub.waitFor((m) => m.topic === 'pop2mqtt/rule/camera-motion/event', 10_000));
  const ce = camEvent.json as Json;
  assert.equal(ce.event_type, 'Motion');
  assert.ok(cameraEventCfg.event_types.includes(ce.event_type));
  assert.equal(ce.mailbox, 'home');
  assert.equal(ce.rule, 'camera-motion');
  assert.equal(ce.subject, 'ALARM: Motion Camera 1');
  assert.equal(ce.from, 'nvr@nvr.local');
  assert.equal(ce.alert_id, (alarm.json as Json).id, 'the event carries the alert id');
  assert.equal(camEvent.retain, false);
  const ge = (await sub.waitFor((m) => m.topic === 'pop2mqtt/rule/gate-snapshot/event', 10_000)).json as Json;
  assert.equal(ge.event_type, 'alert');
  assert.ok(gateEventCfg.event_types.includes(ge.event_type));

  // The snapshot: raw bytes, identical to the attachment, on the rule's attachment topic and on the image entity's topic.
  const raw = await sub.waitFor((m) => m.topic === 'pop2mqtt/snap/gate', 10_000);
  assert.ok(raw.payload.equals(jpeg), `attachment topic carries the JPEG bytes (${raw.payload.length} vs ${jpeg.length})`);
  const img = await sub.waitFor((m) => m.topic === 'pop2mqtt/rule/gate-snapshot/image', 10_000);
  assert.ok(img.payload.equals(jpeg), `image topic carries the JPEG bytes (${img.payload.length} vs ${jpeg.length})`);
  assert.equal(sub.on('pop2mqtt/alerts/ups').length, 0);

  // Retained for late readers: the image (HA image entity) and the mailbox status the sensors read.
  const snap = await retainedSnapshot(['pop2mqtt/home/status', 'pop2mqtt/rule/gate-snapshot/image'], ['pop2mqtt/#']);
  assert.ok(snap.get('pop2mqtt/rule/gate-snapshot/image')!.payload.equals(jpeg));
  const st = snap.get('pop2mqtt/home/status')!.json as Json;
  assert.equal(st.result, 'ok');
  assert.equal(st.messages, 3);
  assert.equal(st.new, 3);
  assert.equal(st.alerts, 2);
  assert.equal(st.alerts_today, 2);
  assert.equal(st.connection_problem, false);
  assert.ok(st.bytes_last_poll > jpeg.length, `bytes_last_poll ${st.bytes_last_poll} counts the RETR of the snapshot mail`);
  assert.ok(st.bytes_total >= st.bytes_last_poll);
  assert.ok(Date.parse(st.last_poll) > Date.now() - 60_000, `last_poll ${st.last_poll}`);
  assert.ok(Date.parse(st.next_poll) > Date.now(), `next_poll ${st.next_poll}`);
  // Every sensor's value_template reads a key the status really has.
  for (const o of MAILBOX_OBJECTS.filter((x) => !x.startsWith('button'))) {
    const c = sub.on(cfgTopic(o))[0]!.json as Json;
    const key = /value_json\.(\w+)/.exec(c.value_template)?.[1];
    assert.ok(key && key in st, `${o}: ${c.value_template} reads a key of the status`);
  }

  // A later poll request with new mail: answered ok with the transaction echoed, and the new alert arrives.
  await lab.dovecot.deliver(USER, alarmMail(2, 'cam2'));
  const r2 = await request(sub, 'poll', { mailbox: 'home', transaction: 't2' });
  assert.equal(r2.status, 'ok');
  assert.equal(r2.transaction, 't2');
  assert.equal(r2.data[0].new, 1);
  assert.equal(r2.data[0].alerts, 1);
  await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/Camera 2', 10_000);
  assert.equal(sub.on('pop2mqtt/alerts/Camera 1').length, 1, 'nothing alerted twice');

  const bad = await request(sub, 'poll', { mailbox: 'nosuchbox', transaction: 't3' });
  assert.equal(bad.status, 'error');
  assert.equal(bad.transaction, 't3');
  assert.match(bad.error!, /nosuchbox/);

  assert.equal((await agent.stop()).code, 0, agent.output());
});

test('status and test_rule requests are answered from the running agent', T, async () => {
  await freshWorld();
  const sub = await watch(['pop2mqtt/#']);
  const agent = await startAgent(agentConfig());
  await lab.dovecot.deliver(USER, alarmMail(3, 'cam3'));
  assert.equal((await request(sub, 'poll', {})).status, 'ok');

  const st = await request(sub, 'status', { transaction: 's1' });
  assert.equal(st.status, 'ok');
  assert.equal(st.transaction, 's1');
  assert.equal(st.data.version, VERSION);
  assert.equal(st.data.broker_connected, true);
  assert.equal(st.data.mailboxes.home.result, 'ok');
  assert.equal(st.data.mailboxes.home.alerts, 1);
  assert.equal(st.data.outbox.size, 0);
  const empty = await request(sub, 'status', '');
  assert.equal(empty.status, 'ok');
  assert.ok(empty.data.mailboxes.home);

  // A raw message as payload: which rule matches, and what it would publish.
  const gate = await request(sub, 'test_rule', makeMail({ from: 'cam@gate.local', subject: 'x', attachments: [{ filename: 'a.jpg', contentType: 'image/jpeg', content: fakeJpeg(500) }] }));
  assert.equal(gate.status, 'ok', JSON.stringify(gate));
  assert.deepEqual(gate.data.matched, ['gate-snapshot']);
  const topics = gate.data.rules.find((r: Json) => r.rule === 'gate-snapshot').publications.map((p: Json) => p.topic);
  assert.ok(topics.includes('pop2mqtt/alerts/gate') && topics.includes('pop2mqtt/snap/gate'), topics.join(', '));
  const cam = await request(sub, 'test_rule', { message: alarmMail(4, 'cam4') });
  assert.equal(cam.status, 'ok');
  assert.deepEqual(cam.data.matched, ['camera-motion']);
  const none = await request(sub, 'test_rule', { message: fromMail('news@shop.example', 'n2') });
  assert.deepEqual(none.data.matched, []);
  // Explaining is not polling: nothing was published for the test messages.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sub.on('pop2mqtt/alerts/gate').length, 0);
  assert.equal(sub.on('pop2mqtt/alerts/Camera 4').length, 0);

  assert.equal((await agent.stop()).code, 0, agent.output());
});

test('reload: an invalid config is refused (error names the path) and the old one keeps running; a valid one removes a rule\'s entities and adds the new rule', T, async () => {
  await freshWorld();
  const sub = await watch();
  const yaml = agentConfig();
  const agent = await startAgent(yaml);
  await sub.waitForCount(EXPECTED_DISCOVERY.length, 5_000, isDiscovery);

  await writeFile(agent.config, yaml.replace(/port: \d+/, 'port: notaport'));
  const bad = await request(sub, 'reload', { transaction: 'r1' });
  assert.equal(bad.status, 'error');
  assert.equal(bad.transaction, 'r1');
  assert.match(bad.error!, /mailboxes\[0\]\.port/);
  assert.ok(!bad.error!.includes(PASS));

  // The old config still runs: a poll still alerts, with the old rules.
  await lab.dovecot.deliver(USER, alarmMail(5, 'cam5'));
  const p1 = await request(sub, 'poll', { mailbox: 'home' });
  assert.equal(p1.status, 'ok', JSON.stringify(p1));
  await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/Camera 5', 10_000);
  assert.deepEqual(sub.on('pop2mqtt/bridge/state').map((m) => m.json), [{ state: 'online' }]);

  // The gate rule shows a snapshot (retained, for Home Assistant's image entity) before it is removed.
  const IMAGE = 'pop2mqtt/rule/gate-snapshot/image';
  await lab.dovecot.deliver(USER, makeMail({ from: 'Gate <cam@gate.local>', subject: 'Gate motion', body: 'x\r\n', attachments: [{ filename: 'g.jpg', contentType: 'image/jpeg', content: fakeJpeg(600) }] }));
  assert.equal((await request(sub, 'poll', { mailbox: 'home' })).status, 'ok');
  await sub.waitFor((m) => m.topic === IMAGE && m.payload.length > 0, 10_000);
  assert.ok((await retainedSnapshot([IMAGE], ['pop2mqtt/#'])).get(IMAGE)!.payload.length > 0);

  // A valid config without the gate-snapshot rule (an event and an image entity), with a new door rule.
  sub.clear();
  await writeFile(agent.config, yaml.replace(RULE_GATE, RULE_DOOR));
  const ok = await request(sub, 'reload', { transaction: 'r2' });
  assert.equal(ok.status, 'ok', JSON.stringify(ok));
  assert.deepEqual(ok.data, { mailboxes: 1, rules: 3 });
  const gateTopics = [cfgTopic('event/pop2mqtt/rule_gate-snapshot_event'), cfgTopic('image/pop2mqtt/rule_gate-snapshot_image')];
  const doorTopic = cfgTopic('event/pop2mqtt/rule_door_event');
  for (const t of gateTopics) {
    const removal = await sub.waitFor((m) => m.topic === t, 5_000);
    assert.equal(removal.payload.length, 0, `removed entity ${t}: empty payload`);
  }
  // Its retained snapshot goes with it: a late reader finds no image of a rule that no longer exists.
  await sub.waitFor((m) => m.topic === IMAGE && m.payload.length === 0, 5_000);
  assert.equal((await retainedSnapshot(['pop2mqtt/bridge/state'], ['pop2mqtt/#'])).has(IMAGE), false);
  const door = (await sub.waitFor((m) => m.topic === doorTopic, 5_000)).json as Json;
  assert.equal(door.state_topic, 'pop2mqtt/rule/door/event');
  assert.deepEqual(door.availability.map((a: Json) => a.topic), ['pop2mqtt/bridge/state']);
  const info = (await sub.waitFor((m) => m.topic === 'pop2mqtt/bridge/info', 5_000)).json as Json;
  assert.deepEqual(info.rules.map((r: Json) => r.name), ['camera-motion', 'door', 'ups']);

  // Retained view of a newcomer (e.g. a restarted Home Assistant): door there, gate-snapshot gone.
  const expectedNow = EXPECTED_DISCOVERY.filter((t) => !gateTopics.includes(t)).concat(doorTopic).sort();
  const snap = await retainedSnapshot(expectedNow);
  assert.deepEqual([...snap.keys()].filter((t) => t.startsWith(`${HA}/`)).sort(), expectedNow);

  // The new rule works; the removed one no longer alerts; the others still do.
  await lab.dovecot.deliverMany(USER, [
    fromMail('Door <door@alarm.local>', 'door1'),
    makeMail({ from: 'cam@gate.local', subject: 'Gate', attachments: [{ filename: 'g.jpg', contentType: 'image/jpeg', content: fakeJpeg(800) }] }),
    fromMail('UPS <ups@power.local>', 'ups1'),
  ]);
  const p2 = await request(sub, 'poll', { mailbox: 'home' });
  assert.equal(p2.status, 'ok');
  assert.equal(p2.data[0].new, 3);
  assert.equal(p2.data[0].alerts, 2);
  await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/door', 10_000);
  await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/ups', 10_000);
  const doorEvent = (await sub.waitFor((m) => m.topic === 'pop2mqtt/rule/door/event', 10_000)).json as Json;
  assert.equal(doorEvent.event_type, 'alert');
  assert.equal(sub.on('pop2mqtt/alerts/gate').length, 0);
  assert.equal(sub.on('pop2mqtt/snap/gate').length, 0);

  assert.equal((await agent.stop()).code, 0, agent.output());
});

test('republish: Home Assistant coming online gets discovery again; after a broker restart state, info, status and discovery are back', T, async () => {
  await freshWorld();
  let sub = await watch();
  const agent = await startAgent(agentConfig());
  await sub.waitForCount(EXPECTED_DISCOVERY.length, 5_000, isDiscovery);
  assert.equal((await request(sub, 'poll', { mailbox: 'home' })).status, 'ok');
  await sub.waitFor((m) => m.topic === 'pop2mqtt/home/status', 5_000);

  // Home Assistant says offline: nothing to do. Then online: every config again.
  sub.clear();
  await sub.client.publishAsync(`${HA}/status`, 'offline', { qos: 1 });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(sub.messages.filter(isDiscovery).length, 0, 'offline triggers nothing');
  await sub.client.publishAsync(`${HA}/status`, 'online', { qos: 1 });
  const again = await sub.waitForCount(EXPECTED_DISCOVERY.length, 10_000, isDiscovery);
  assert.deepEqual([...new Set(again.map((m) => m.topic))].sort(), EXPECTED_DISCOVERY);

  // Broker restart without persistence: everything retained is gone until the agent republishes it.
  await sub.close();
  await lab.mosquitto.restart();
  sub = await watch();
  // The agent reconnects on its own (reconnect.min 1 s) and republishes; a newcomer then finds it all retained.
  await sub.waitForCount(EXPECTED_DISCOVERY.length, 15_000, isDiscovery).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
  });
  const snap = await retainedSnapshot(['pop2mqtt/bridge/state', 'pop2mqtt/bridge/info', 'pop2mqtt/home/status', ...EXPECTED_DISCOVERY]).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
  });
  assert.deepEqual(snap.get('pop2mqtt/bridge/state')!.json, { state: 'online' });
  assert.equal((snap.get('pop2mqtt/bridge/info')!.json as Json).version, VERSION);
  const st = snap.get('pop2mqtt/home/status')!.json as Json;
  assert.equal(st.result, 'ok');
  assert.equal(st.connection_problem, false);
  assert.deepEqual([...snap.keys()].filter((t) => t.startsWith(`${HA}/`)).sort(), EXPECTED_DISCOVERY);
  // Requests work over the new connection.
  assert.equal((await request(sub, 'status', {})).status, 'ok');

  assert.equal((await agent.stop()).code, 0, agent.output());
});

test('availability: SIGKILL leaves the last will offline (retained); SIGTERM publishes offline and exits 0', T, async () => {
  await freshWorld();
  const sub = await watch(['pop2mqtt/bridge/state']);
  const a1 = await startAgent(agentConfig());
  await sub.waitFor((m) => (m.json as Json)?.state === 'online', 5_000);
  sub.clear();
  a1.child.kill('SIGKILL');
  const killed = await a1.exited;
  assert.equal(killed.signal, 'SIGKILL');
  const will = await sub.waitFor(() => true, 10_000);
  assert.deepEqual(will.json, { state: 'offline' });
  const snap1 = await retainedSnapshot(['pop2mqtt/bridge/state'], ['pop2mqtt/bridge/state']);
  assert.deepEqual(snap1.get('pop2mqtt/bridge/state')!.json, { state: 'offline' }, 'the will is retained');

  const a2 = await startAgent(agentConfig());
  await sub.waitFor((m) => (m.json as Json)?.state === 'online', 5_000);
  sub.clear();
  const t0 = Date.now();
  const ex = await a2.stop();
  assert.equal(ex.code, 0, a2.output());
  assert.equal(ex.signal, null);
  assert.ok(Date.now() - t0 < 10_000, 'stops within 10 s');
  assert.match(a2.output(), /SIGTERM received[\s\S]*pop2mqtt stopped/);
  const off = await sub.waitFor(() => true, 5_000);
  assert.deepEqual(off.json, { state: 'offline' });
  const snap2 = await retainedSnapshot(['pop2mqtt/bridge/state'], ['pop2mqtt/bridge/state']);
  assert.deepEqual(snap2.get('pop2mqtt/bridge/state')!.json, { state: 'offline' });
});

test('Home Assistant: birth topic homeassistant/status whatever the prefix, birth payload configurable; a templated attachment topic gets an image entity whose content_type follows the image published', T, async () => {
  await freshWorld();
  const PREFIX = 'ha-disc';
  const sub = await watch(['pop2mqtt/#', `${PREFIX}/#`]);
  const rule = `  - name: cams
    when:
      from: { domain: { is: "cams.local" } }
      subject: { regex: '^Snapshot (?<camera>\\w+)$' }
    publish: { topic: "alerts/{{camera}}" }
    attachments: { topic: "snap/{{camera}}", types: ["image/*", "application/pdf"] }
`;
  const yaml = minimalConfig(lab, {
    rules: rule, stateDir: `./state-${++configSeq}`, existing: 'process', keep: true, schedule: '0 0 1 1 *',
    extra: `log_level: debug\nhomeassistant:\n  discovery: true\n  prefix: ${PREFIX}\n  birth_payload: ha-up\n`,
  });
  const agent = await startAgent(yaml);
  const imageCfgTopic = `${PREFIX}/image/pop2mqtt/rule_cams_image/config`;
  const first = (await sub.waitFor((m) => m.topic === imageCfgTopic, 10_000)).json as Json;
  assert.equal(first.image_topic, 'pop2mqtt/rule/cams/image', 'a templated attachment topic still gets an image entity');
  assert.equal(first.content_type, 'image/jpeg', 'before any image: the default');

  // A PNG (after a PDF, which never goes to the image topic) makes the entity announce image/png again.
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), fakeJpeg(4000, 3).subarray(8)]);
  await lab.dovecot.deliver(USER, makeMail({
    from: 'cam@cams.local', subject: 'Snapshot yard', body: 'see\r\n',
    attachments: [{ filename: 'r.pdf', contentType: 'application/pdf', content: Buffer.from('%PDF-1.4 x') }, { filename: 'yard.png', contentType: 'image/png', content: png }],
  }));
  sub.clear();
  assert.equal((await request(sub, 'poll', { mailbox: 'home' })).status, 'ok');
  const image = await sub.waitFor((m) => m.topic === 'pop2mqtt/rule/cams/image', 10_000);
  assert.ok(image.payload.equals(png), 'the PNG, byte-identical, not the PDF');
  const updated = await sub.waitFor((m) => m.topic === imageCfgTopic, 10_000);
  assert.equal((updated.json as Json).content_type, 'image/png');
  await sub.waitFor((m) => m.topic === 'pop2mqtt/snap/yard', 10_000);

  // Birth message: Home Assistant's own topic (not <prefix>/status), with the configured payload only.
  sub.clear();
  await sub.client.publishAsync(`${PREFIX}/status`, 'ha-up', { qos: 1 });
  await sub.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
  await sub.client.publishAsync('homeassistant/status', 'ha-up', { qos: 1 });
  const again = await sub.waitFor((m) => m.topic === imageCfgTopic, 10_000);
  assert.equal((again.json as Json).content_type, 'image/png');
  // The log line travels over a pipe, the config over MQTT: wait for the line.
  await until(() => /Home Assistant came online/.test(agent.output()), 10_000, 'the birth message logged');
  assert.equal(agent.output().match(/Home Assistant came online/g)!.length, 1, 'only the configured payload on homeassistant/status counts');
  assert.equal((await agent.stop()).code, 0, agent.output());
});
