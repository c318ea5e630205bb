// A reload that changes the homeassistant: section, with the real agent, Dovecot and Mosquitto: discovery switched on starts the extension, a new prefix moves the configs (the old ones cleared), switched off clears them and the image snapshot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { startLab, minimalConfig, runAgent, USER, type Lab } from '../support/lab.js';
import { fakeJpeg, makeMail } from '../support/maildir.js';
import { bridgeRequest, retainedNow, subscribe, type ReceivedMessage, type Subscriber } from '../support/mqtt-subscriber.js';

let lab: Lab;
before(async () => {
  // No persistence: what is retained was published during this test.
  lab = await startLab({ mosquitto: { persistence: false } });
});
after(async () => {
  await lab?.stop();
});

const RULE = `  - name: gate
    when:
      from: { address: { is: "cam@gate.local" } }
    publish: { topic: "alerts/gate" }
    attachments: { topic: "snap/gate", types: ["image/*"] }
`;
/** Polls only on request (the schedule fires once a year), never coalesced. */
const config = (ha: string) => minimalConfig(lab, {
  rules: RULE, stateDir: './state-hareload', existing: 'process', keep: true, schedule: '0 0 1 1 *', extra: `homeassistant:\n${ha}`,
}).replace('  base_topic: pop2mqtt\n', '  base_topic: pop2mqtt\n  min_request_interval: 0\n');

/** The 11 configs: the agent's poll button, the rule's event and image, 8 per mailbox. */
const OBJECTS = [
  'button/pop2mqtt/poll_all', 'event/pop2mqtt/rule_gate_event', 'image/pop2mqtt/rule_gate_image',
  ...['last_poll', 'new_messages', 'messages', 'alerts_today', 'bytes_total', 'bytes_last_poll'].map((s) => `sensor/pop2mqtt/mailbox_home_${s}`),
  'binary_sensor/pop2mqtt/mailbox_home_connection_problem', 'button/pop2mqtt/mailbox_home_poll',
];
const configsUnder = (prefix: string) => OBJECTS.map((o) => `${prefix}/${o}/config`).sort();
const EVENT = 'pop2mqtt/rule/gate/event';
const IMAGE = 'pop2mqtt/rule/gate/image';
const TOPICS = ['pop2mqtt/#', 'homeassistant/#', 'ha2/#'];
/** Retained discovery configs of this agent (node id pop2mqtt) a newcomer finds, by topic. */
const ourConfigs = (retained: Map<string, ReceivedMessage>) =>
  [...retained.keys()].filter((t) => /^[^/]+\/[^/]+\/pop2mqtt\/[^/]+\/config$/.test(t)).sort();

/** A PNG signature on filler bytes: the image entity's content_type follows it (the rule's default is image/jpeg). */
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), fakeJpeg(700).subarray(8)]);
const gateMail = (tag: string) => makeMail({
  from: 'Gate <cam@gate.local>', subject: `Gate ${tag}`, messageId: `<${tag}@gate.local>`, body: 'x\r\n',
  attachments: [{ filename: 'g.png', contentType: 'image/png', content: PNG }],
});
const contentType = (m: ReceivedMessage | undefined) => (m?.json as { content_type?: string } | undefined)?.content_type;

let tx = 0;
async function reload(sub: Subscriber, file: string, ha: string): Promise<void> {
  await writeFile(file, config(ha));
  const r = await bridgeRequest(sub, 'reload', `r${++tx}`);
  assert.equal(r.status, 'ok', JSON.stringify(r));
}
/** A poll on request; its response comes once the broker acknowledged the alert's publications. */
async function poll(sub: Subscriber): Promise<void> {
  const r = await bridgeRequest(sub, 'poll', `p${++tx}`, { mailbox: 'home' });
  assert.equal(r.status, 'ok', JSON.stringify(r));
}
/** Every topic in `topics` received with a non-empty (or, `empty`, an empty) retained-style payload after index `from`. */
async function waitAll(sub: Subscriber, topics: string[], empty: boolean, from = 0): Promise<void> {
  for (const t of topics) await sub.waitFor((m) => m.topic === t && (m.payload.length === 0) === empty && sub.messages.indexOf(m) >= from, 20_000);
}

test('reload applies a changed homeassistant section: discovery on, new prefix and status topic (old configs cleared), off (configs and snapshot cleared, no more events)', { timeout: 240_000 }, async () => {
  const url = lab.mosquitto.url;
  const sub = await subscribe(url, TOPICS);
  lab.defer(() => sub.close());
  // Left under the next prefix by an earlier run (a rule since deleted), and a config of another tool there.
  const stale = 'ha2/event/pop2mqtt/rule_gone_event/config';
  const foreign = 'ha2/sensor/othertool/thing/config';
  await sub.client.publishAsync(stale, JSON.stringify({ name: 'gone', state_topic: 'pop2mqtt/rule/gone/event' }), { qos: 1, retain: true });
  await sub.client.publishAsync(foreign, JSON.stringify({ name: 'thing' }), { qos: 1, retain: true });

  const file = await lab.writeConfig(config('  discovery: false\n'), 'hareload.yaml');
  const agent = await runAgent(lab, file);
  assert.equal((await bridgeRequest(sub, 'status', 's0')).status, 'ok');
  assert.deepEqual(ourConfigs(await retainedNow(url, TOPICS)), [stale], 'discovery off at start: nothing announced');

  // 1. Switched on by a reload: the extension is loaded, announces every config, sends events and snapshots, and
  //    listens for Home Assistant's birth message.
  await reload(sub, file, '  discovery: true\n');
  await waitAll(sub, configsUnder('homeassistant'), false);
  assert.deepEqual(ourConfigs(await retainedNow(url, TOPICS)), [...configsUnder('homeassistant'), stale].sort());
  await lab.dovecot.deliver(USER, gateMail('on'));
  await poll(sub);
  const event = await sub.waitFor((m) => m.topic === EVENT, 20_000);
  assert.equal((event.json as { rule?: string }).rule, 'gate');
  await sub.waitFor((m) => m.topic === IMAGE && m.payload.equals(PNG), 20_000);
  await sub.waitFor((m) => m.topic === 'homeassistant/image/pop2mqtt/rule_gate_image/config' && contentType(m) === 'image/png', 20_000);
  let from = sub.messages.length;
  await sub.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
  await waitAll(sub, configsUnder('homeassistant'), false, from);

  // 2. A new prefix and birth topic: the configs under the old prefix are cleared before they appear under the new
  //    one (Home Assistant would refuse a second config with the same unique_id); a stale config of an earlier run
  //    under the new prefix goes, another tool's stays; the snapshot stays, the new image entity shows it (a PNG).
  from = sub.messages.length;
  await reload(sub, file, '  discovery: true\n  prefix: ha2\n  status_topic: ha2/status\n');
  await waitAll(sub, configsUnder('homeassistant'), true, from);
  await waitAll(sub, configsUnder('ha2'), false, from);
  await waitAll(sub, [stale], true, from);
  const since = sub.messages.slice(from);
  const lastClear = Math.max(...since.map((m, i) => (m.topic.startsWith('homeassistant/') && m.payload.length === 0 ? i : -1)));
  const firstNew = since.findIndex((m) => configsUnder('ha2').includes(m.topic));
  assert.ok(lastClear < firstNew, 'old configs cleared before the new ones are announced');
  let retained = await retainedNow(url, TOPICS);
  assert.deepEqual(ourConfigs(retained), configsUnder('ha2'));
  assert.ok(retained.has(foreign), 'another tool\'s config is left alone');
  assert.ok((retained.get(IMAGE)?.payload.length ?? 0) > 0, 'the snapshot stays for the image entity under the new prefix');
  assert.equal((retained.get('ha2/image/pop2mqtt/rule_gate_image/config')!.json as { image_topic?: string }).image_topic, IMAGE);
  assert.equal(contentType(retained.get('ha2/image/pop2mqtt/rule_gate_image/config')), 'image/png', 'the content type of the image shown carries over');
  // Home Assistant's birth on the new status topic has everything announced again.
  from = sub.messages.length;
  await sub.client.publishAsync('ha2/status', 'online', { qos: 1 });
  await waitAll(sub, configsUnder('ha2'), false, from);

  // 3. Switched off: every config under the prefix and the snapshot are cleared, the extension is unloaded: an alert
  //    brings no event and no snapshot, Home Assistant's birth announces nothing.
  from = sub.messages.length;
  await reload(sub, file, '  discovery: false\n  prefix: ha2\n  status_topic: ha2/status\n');
  await waitAll(sub, [...configsUnder('ha2'), IMAGE], true, from);
  retained = await retainedNow(url, TOPICS);
  assert.deepEqual(ourConfigs(retained), []);
  assert.equal(retained.has(IMAGE), false, 'no snapshot left for an entity that is gone');
  assert.ok(retained.has(foreign));
  from = sub.messages.length;
  await sub.client.publishAsync('ha2/status', 'online', { qos: 1 });
  await sub.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
  await lab.dovecot.deliver(USER, gateMail('off'));
  await poll(sub);
  await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/gate' && sub.messages.indexOf(m) >= from, 20_000);
  assert.equal((await bridgeRequest(sub, 'status', 's1')).status, 'ok');
  const after = sub.messages.slice(from).filter((m) => m.topic === EVENT || m.topic === IMAGE || m.topic.endsWith('/config'));
  assert.deepEqual(after.map((m) => m.topic), [], 'nothing for Home Assistant once discovery is off');
  assert.equal((await agent.stop()).code, 0, agent.output());
});
