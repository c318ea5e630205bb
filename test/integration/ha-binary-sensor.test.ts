// The rule option homeassistant.binary_sensor with the real agent, Dovecot and Mosquitto: one motion entity per camera seen, announced before its first ON, kept across restarts, removed with the rule.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { startLab, minimalConfig, runAgent, until, USER, type Lab } from '../support/lab.js';
import { makeMail } from '../support/maildir.js';
import { bridgeRequest, subscribe, type Subscriber } from '../support/mqtt-subscriber.js';

let lab: Lab;
before(async () => {
  // No persistence: after a broker restart, every retained config there was republished by the agent.
  lab = await startLab({ mosquitto: { persistence: false } });
});
after(async () => {
  await lab?.stop();
});

const RULE = `  - name: cam-motion
    when:
      from: { contains: "@nvr.local" }
      subject: { regex: '^ALARM: Motion (?<camera>.+)$' }
    publish: { topic: "alerts/{{camera}}" }
    homeassistant:
      binary_sensor: { per: "{{camera}}", device_class: motion, off_delay: 45s }
`;
const RULE_PLAIN = RULE.replace(/    homeassistant:\n.*\n/, '');
const config = (rules: string) => minimalConfig(lab, {
  rules, stateDir: './state-bs', existing: 'process', keep: true, schedule: '0 0 1 1 *',
  extra: 'homeassistant:\n  discovery: true\n',
});
const mail = (camera: string, tag: string) => makeMail({ from: 'NVR <nvr@nvr.local>', subject: `ALARM: Motion ${camera}`, messageId: `<${tag}@nvr.local>` });
const CFG = /^homeassistant\/binary_sensor\/pop2mqtt\/rule_cam-motion_bs_([^/]+)\/config$/;
const STATE = (camera: string) => `pop2mqtt/rule/cam-motion/binary_sensor/${camera}`;

async function watch(): Promise<Subscriber> {
  const s = await subscribe(lab.mosquitto.url, ['pop2mqtt/#', 'homeassistant/#']);
  lab.defer(() => s.close());
  return s;
}

const startAgent = (file: string) => runAgent(lab, file);

const request = (sub: Subscriber, cmd: string, tx: string) => bridgeRequest(sub, cmd, tx, { mailbox: 'home' });

test('one binary_sensor per camera: config (retained) before the first ON, ON per alert, off by HA after off_delay; restart re-announces; removing the option deletes them', { timeout: 180_000 }, async () => {
  const file = await lab.writeConfig(config(RULE), 'bs.yaml');
  const sub = await watch();
  let agent = await startAgent(file);

  await lab.dovecot.deliverMany(USER, [mail('Driveway', 'a1'), mail('Back Door', 'a2'), mail('Driveway', 'a3')]);
  assert.equal((await request(sub, 'poll', 'p1')).status, 'ok');
  await until(() => sub.on(STATE('Driveway')).length === 2 && sub.on(STATE('Back Door')).length === 1, 20_000, 'three ON states');

  for (const cam of ['Driveway', 'Back Door']) {
    const states = sub.on(STATE(cam));
    for (const s of states) {
      assert.equal(s.text, 'ON');
      assert.equal(s.retain, false, 'ON is not retained: a restarted HA must not see old motion');
    }
    const cfgs = sub.messages.filter((m) => CFG.test(m.topic) && (m.json as { state_topic?: string })?.state_topic === STATE(cam));
    assert.ok(cfgs.length >= 1, `discovery config for ${cam}`);
    assert.ok(sub.messages.indexOf(cfgs[0]!) < sub.messages.indexOf(states[0]!), `${cam}: config arrives before the first ON`);
    const p = cfgs[0]!.json as Record<string, any>;
    assert.equal(p.device_class, 'motion');
    assert.equal(p.off_delay, 45);
    assert.equal(p.payload_on, 'ON');
    assert.equal(p.payload_off, 'OFF');
    assert.equal(p.name, `${cam} motion`);
    assert.deepEqual(p.availability.map((a: { topic: string }) => a.topic), ['pop2mqtt/bridge/state']);
  }
  const cfgTopics = [...new Set(sub.messages.filter((m) => CFG.test(m.topic)).map((m) => m.topic))].sort();
  assert.equal(cfgTopics.length, 2, cfgTopics.join(', '));
  // Only the agent times nothing: no OFF is ever published, Home Assistant turns the entity off after off_delay.
  assert.equal(sub.messages.filter((m) => m.topic.includes('/binary_sensor/') && m.text === 'OFF').length, 0);

  // Restart agent and broker (the broker forgets everything): the agent announces both entities again from its state.
  assert.equal((await agent.stop()).code, 0);
  await lab.mosquitto.restart();
  const sub2 = await watch();
  agent = await startAgent(file);
  await until(() => cfgTopics.every((t) => sub2.messages.some((m) => m.topic === t && m.payload.length > 0)), 20_000, 'both configs re-announced');

  // Removing the option (reload) deletes both entities with an empty retained config.
  sub2.clear();
  await writeFile(file, config(RULE_PLAIN));
  assert.equal((await request(sub2, 'reload', 'r1')).status, 'ok');
  for (const t of cfgTopics) await sub2.waitFor((m) => m.topic === t && m.payload.length === 0, 10_000);
  assert.equal((await agent.stop()).code, 0, agent.output());
});
