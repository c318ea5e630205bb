// Command mails against replay, end to end through real Dovecot, Mosquitto and the real CLI: copies of one authenticated command act once, across restarts; a stale-dated (or re-dated) copy never acts; refused copies stay on the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startLab, minimalConfig, runCli, USER, type Lab } from '../support/lab.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';

const TOKEN = 'Replay-Token-0815';
const RULES = `  - name: garage-command
    action: true
    when:
      authenticated: true
      shared_secret: { secret: "\${GARAGE_TOKEN}" }
      from: { address: { is: "me@example.com" } }
      subject: { regex: "^(?<command>open|close) garage\\\\b" }
    publish: { topic: "command/garage", payload: "{{command}}" }
    then: delete
`;

/** An authenticated command mail as the receiving MTA (mx.home.arpa) hands it over. */
function command(messageId: string, date: Date): Buffer {
  return Buffer.from([
    'Authentication-Results: mx.home.arpa; dkim=pass header.d=example.com header.s=s1; dmarc=pass header.from=example.com',
    'From: Me <me@example.com>',
    'To: house@home.example',
    `Subject: open garage ${TOKEN}`,
    `Date: ${date.toUTCString()}`,
    `Message-ID: ${messageId}`,
    '',
    'sent from my phone',
    '',
  ].join('\r\n'));
}

let lab: Lab;
let cfg: string;
before(async () => {
  lab = await startLab();
  lab.env.GARAGE_TOKEN = TOKEN;
  const text = minimalConfig(lab, { existing: 'process', keep: true, stateDir: './state-replay', extra: 'trusted_authserv_ids: [mx.home.arpa]\n', rules: RULES });
  cfg = await lab.writeConfig(text, 'replay.yaml');
});
after(async () => {
  await lab?.stop();
});

/**
 * Everything the agent published before it exited has reached the subscriber once a marker published afterwards has:
 * Mosquitto forwards messages in the order it accepted them, and `once` exits only after its PUBACKs.
 */
async function settled(sub: Subscriber, n: number): Promise<void> {
  const client = await mqtt.connectAsync(lab.mosquitto.url, { clientId: `marker-${n}` });
  try {
    await client.publishAsync('pop2mqtt-test/marker', String(n), { qos: 1 });
  } finally {
    await client.endAsync();
  }
  await sub.waitFor((m) => m.topic === 'pop2mqtt-test/marker' && m.text === String(n), 10_000);
}

const once = async () => {
  const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, new RegExp(TOKEN), 'the token never reaches the logs');
  return r.stdout + r.stderr;
};

test('copies of one authenticated command mail publish once, also after a restart; a stale copy publishes nothing; refused copies stay', { timeout: 180_000 }, async () => {
  const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/command/#', 'pop2mqtt-test/marker']);
  const commands = () => sub.messages.filter((m) => m.topic === 'pop2mqtt/command/garage');
  try {
    // 1. Two copies of the same mail (same Message-ID, fresh Date) in one poll: one publication.
    const genuine = command('<cmd.replay.1@example.com>', new Date());
    await lab.dovecot.deliverMany(USER, [genuine, genuine]);
    const first = await once();
    await settled(sub, 1);
    assert.deepEqual(commands().map((m) => m.text), ['open']);
    assert.match(first, /command mail not acted on.*replay/);
    // the acted-on copy was consumed (then: delete); the replayed copy is left for a person, not deleted
    assert.equal((await lab.dovecot.messageFiles(USER)).length, 1);

    // 2. A new process (a restart) and a third copy: the replay memory is in the state file.
    await lab.dovecot.deliver(USER, genuine);
    const second = await once();
    await settled(sub, 2);
    assert.equal(commands().length, 1, 'a copy after a restart publishes nothing');
    assert.match(second, /command mail not acted on.*replay/);
    assert.equal((await lab.dovecot.messageFiles(USER)).length, 2);

    // 3. A copy dated 17 months ago (the case; a Message-ID never seen): not acted on, with the reason.
    const stale = new Date(Date.now() - 517 * 86_400_000);
    await lab.dovecot.deliver(USER, command('<cmd.replay.old@example.com>', stale));
    const third = await once();
    await settled(sub, 3);
    assert.equal(commands().length, 1, 'a stale command publishes nothing');
    assert.match(third, /command mail not acted on.*Date .* is 517 d old, more than max_age 1 h/);
    assert.equal((await lab.dovecot.messageFiles(USER)).length, 3);

    // 3b. The same stale mail with a fresh Date added on top (its DKIM signature would still verify): not acted on.
    const redated = Buffer.concat([Buffer.from(`Date: ${new Date().toUTCString()}\r\n`), command('<cmd.replay.old2@example.com>', stale)]);
    await lab.dovecot.deliver(USER, redated);
    const redatedRun = await once();
    await settled(sub, 31);
    assert.equal(commands().length, 1, 'a re-dated stale command publishes nothing');
    assert.match(redatedRun, /command mail not acted on.*2 date headers/);
    assert.equal((await lab.dovecot.messageFiles(USER)).length, 4);

    // 4. A genuine new command still acts: the guards refuse copies, not commands.
    await lab.dovecot.deliver(USER, command('<cmd.replay.2@example.com>', new Date()));
    await once();
    await settled(sub, 4);
    assert.equal(commands().length, 2);
    assert.equal((await lab.dovecot.messageFiles(USER)).length, 4);

    // 5. Refused mail was marked handled: a later poll neither logs nor acts on it again.
    const fourth = await once();
    await settled(sub, 5);
    assert.equal(commands().length, 2);
    assert.doesNotMatch(fourth, /command mail not acted on/);
  } finally {
    await sub.close();
  }
});
