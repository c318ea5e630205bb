// Broker clients cannot exhaust the agent: oversized requests never reach it (MQTT 5) or are refused unparsed (3.1.1), a flood of poll requests is one POP3 login, and a cleartext broker password is warned about.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLab, minimalConfig, runAgent, until, USER, type Lab } from '../support/lab.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { makeMail } from '../support/maildir.js';

const T = { timeout: 120_000 };
let lab: Lab;
let seq = 0;

before(async () => {
  lab = await startLab();
});
after(async () => {
  await lab?.stop();
});

async function startAgent(o: { protocol?: 4 | 5; mqttExtra?: string; url?: string; waitStarted?: boolean } = {}) {
  const yaml = minimalConfig(lab, { stateDir: `./state-limits-${++seq}`, schedule: '0 0 1 1 *', existing: 'process' })
    .replace(`  url: ${lab.mosquitto.url}\n`, `  url: ${o.url ?? lab.mosquitto.url}\n  protocol_version: ${o.protocol ?? 5}\n${o.mqttExtra ?? ''}`);
  return runAgent(lab, await lab.writeConfig(yaml, `limits-${seq}.yaml`), { waitStarted: o.waitStarted });
}

async function watch(): Promise<Subscriber> {
  const s = await subscribe(lab.mosquitto.url, ['pop2mqtt/bridge/response/#']);
  lab.defer(() => s.close());
  return s;
}

const BIG = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(2 * 1024 * 1024, 0x61)]);
const small = (tx: string) => JSON.stringify({ transaction: tx, message: makeMail({ from: 'nvr@nvr.local', subject: 'ALARM: Motion Camera 1' }) });

test('MQTT 5: a 2 MiB request is never delivered to the agent (CONNECT maximumPacketSize); the next request is answered', T, async () => {
  const agent = await startAgent({ protocol: 5 });
  const sub = await watch();
  // Same publisher, same topic, same QoS: the broker keeps their order, and the agent answers test_rule requests in order.
  await sub.client.publishAsync('pop2mqtt/bridge/request/test_rule', BIG, { qos: 1 });
  await sub.client.publishAsync('pop2mqtt/bridge/request/test_rule', small('after-big'), { qos: 1 });
  const r = await sub.waitFor((m) => m.topic === 'pop2mqtt/bridge/response/test_rule' && (m.json as { transaction?: string }).transaction === 'after-big', 30_000);
  assert.equal((r.json as { status: string }).status, 'ok');
  assert.equal(sub.on('pop2mqtt/bridge/response/test_rule').length, 1, 'the big request got no answer: it never arrived');
  assert.doesNotMatch(agent.output(), /request too large/);
  assert.equal(agent.child.exitCode, null, 'still running');
  assert.equal((await agent.stop()).code, 0, agent.output());
});

test('MQTT 3.1.1: a 2 MiB request is dropped as it streams in and refused, the agent keeps answering', T, async () => {
  const agent = await startAgent({ protocol: 4 });
  const sub = await watch();
  await sub.client.publishAsync('pop2mqtt/bridge/request/test_rule', BIG, { qos: 1 });
  const refused = await sub.waitFor((m) => m.topic === 'pop2mqtt/bridge/response/test_rule', 30_000);
  assert.deepEqual(refused.json, { status: 'error', data: {}, error: `request too large: ${BIG.length} bytes, the limit is 1048576 bytes (1 MiB); it was not parsed` });
  await sub.client.publishAsync('pop2mqtt/bridge/request/test_rule', small('after-big'), { qos: 1 });
  const r = await sub.waitFor((m) => (m.json as { transaction?: string })?.transaction === 'after-big', 30_000);
  assert.equal((r.json as { status: string }).status, 'ok');
  assert.match(agent.output(), /request too large; refused unparsed cmd=test_rule bytes=2097168/);
  assert.match(agent.output(), /oversized message from the broker dropped as it arrived \(MQTT 3\.1\.1\) bytes=2097168/, 'its bytes were dropped as they streamed in, never buffered');
  assert.equal((await agent.stop()).code, 0, agent.output());
});

test('40 poll requests at once are one POP3 login; later ones inside min_request_interval get that result, marked coalesced', T, async () => {
  const agent = await startAgent({ mqttExtra: '  min_request_interval: 1h\n' });
  const sub = await watch();
  await lab.dovecot.deliver(USER, makeMail({ from: 'NVR <nvr@nvr.local>', subject: 'ALARM: Motion Camera 2' }));
  const sessionsBefore = (await lab.dovecot.logoutLines()).filter((l) => l.user === USER).length;
  await Promise.all(Array.from({ length: 40 }, (_, i) =>
    sub.client.publishAsync('pop2mqtt/bridge/request/poll', JSON.stringify({ mailbox: 'home', transaction: `f${i}` }), { qos: 1 })));
  const answers = await sub.waitForCount(40, 60_000, (m) => m.topic === 'pop2mqtt/bridge/response/poll');
  type Answer = { status: string; error?: string; data: Array<{ ok: boolean; new?: number; coalesced?: boolean; note?: string }> };
  const ok = answers.map((m) => m.json as Answer).filter((a) => a.status === 'ok');
  const busy = answers.map((m) => m.json as Answer).filter((a) => a.status === 'error');
  for (const b of busy) assert.match(b.error!, /^busy/);
  assert.ok(ok.length >= 1, 'at least the first one polled');
  assert.equal(ok.filter((a) => !a.data[0]!.coalesced).length, 1, 'exactly one real poll');
  assert.equal(ok[0]!.data[0]!.new, 1);
  for (const a of ok.filter((x) => x.data[0]!.coalesced)) {
    assert.equal(a.data[0]!.new, 1, 'the result of the poll that ran');
    assert.match(a.data[0]!.note!, /limited to one per 3600 s \(mqtt\.min_request_interval\)/);
  }
  // One more, well after the burst: still inside the interval, still no login.
  await sub.client.publishAsync('pop2mqtt/bridge/request/poll', JSON.stringify({ mailbox: 'home', transaction: 'late' }), { qos: 1 });
  const late = (await sub.waitFor((m) => (m.json as { transaction?: string })?.transaction === 'late', 30_000)).json as Answer;
  assert.equal(late.data[0]!.coalesced, true);
  assert.equal((await agent.stop()).code, 0, agent.output());
  const sessions = (await lab.dovecot.logoutLines()).filter((l) => l.user === USER).length - sessionsBefore;
  assert.equal(sessions, 1, 'one POP3 session for 41 requests');
});

test('a broker password over plain mqtt:// to a host that is not loopback is warned about at start; to loopback it is not', T, async () => {
  const local = await startAgent({ mqttExtra: '  username: agent\n  password: local-pw-123\n' });
  assert.doesNotMatch(local.output(), /sent in cleartext/);
  assert.equal((await local.stop()).code, 0);
  // 192.0.2.1 (TEST-NET-1) is never reachable: the warning comes before any connection attempt.
  const remote = await startAgent({ url: 'mqtt://192.0.2.1:1883', mqttExtra: '  username: agent\n  password: remote-pw-123\n', waitStarted: false });
  await until(() => /the broker password is sent in cleartext/.test(remote.output()), 30_000, 'the cleartext warning');
  assert.match(remote.output(), /WARN .*the broker password is sent in cleartext.* url=mqtt:\/\/192\.0\.2\.1:1883/);
  assert.doesNotMatch(remote.output(), /remote-pw-123/);
  await remote.stop();
});
