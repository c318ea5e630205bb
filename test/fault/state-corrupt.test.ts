// Fault: the state file truncated, emptied, flipped or filled with garbage; the agent starts, keeps the bad file aside, logs loudly and does not flood.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startLab, runCli, USER, type Lab } from '../support/lab.js';
import { alarmMail, faultConfig, persistentSubscriber, type PersistentSubscriber } from '../support/fault-lab.js';
import { sleep } from '../support/wait.js';

let lab: Lab;
let sub: PersistentSubscriber;

before(async () => {
  lab = await startLab();
  sub = await persistentSubscriber(lab.mosquitto.url, ['pop2mqtt/alerts/#'], `p2m-state-${process.pid}`);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

async function resetMailbox(): Promise<void> {
  const md = lab.dovecot.maildir(USER);
  for (const s of ['new', 'cur']) for (const f of await readdir(path.join(md, s))) await rm(path.join(md, s, f));
}

const corruptions: Array<[string, (good: Buffer) => Buffer]> = [
  ['truncated to half', (b) => b.subarray(0, Math.floor(b.length / 2))],
  ['empty', () => Buffer.alloc(0)],
  ['garbage', () => randomBytes(4096)],
  ['one byte flipped in the body', (b) => {
    const c = Buffer.from(b);
    const i = c.indexOf('"done"');
    c[i + 10] = c[i + 10]! ^ 0x01;
    return c;
  }],
  ['of another mailbox (valid checksum)', (b) => {
    const [header, body] = b.toString('utf8').split('\n');
    const other = body!.replace(/"mailbox":"home"/, '"mailbox":"other"');
    const h = { ...JSON.parse(header!), sha256: createHash('sha256').update(other).digest('hex'), bytes: Buffer.byteLength(other) };
    return Buffer.from(`${JSON.stringify(h)}\n${other}\n`);
  }],
];

for (const [name, corrupt] of corruptions) {
  test(`state file ${name}: starts, keeps the bad file aside, logs loudly, no alert flood (existing: skip), then works normally`, { timeout: 60_000 }, async () => {
    await resetMailbox();
    const stateDir = `./state-${name.replace(/\W+/g, '-')}`;
    const cfg = await lab.writeConfig(faultConfig(lab, { stateDir, existing: 'skip', keep: true }), 'state.yaml');
    const once = async () => {
      const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `once failed:\n${r.stderr}`);
      await sleep(200);
      return r;
    };
    const tags = () => sub.alerts.map((a) => a.tag).sort();
    sub.alerts.length = 0;

    await lab.dovecot.deliverMany(USER, [alarmMail('s-old1'), alarmMail('s-old2')]);
    await once(); // first run, existing: skip
    await lab.dovecot.deliver(USER, alarmMail('s-a'));
    await once();
    await sub.waitForAlerts((a) => a.some((x) => x.tag === 's-a'), 10_000, 'alert s-a');
    assert.deepEqual(tags(), ['s-a']);

    await lab.dovecot.deliverMany(USER, [alarmMail('s-b'), alarmMail('s-c')]);
    const file = path.join(lab.dir, stateDir, 'home.state.json');
    const bad = corrupt(await readFile(file));
    await writeFile(file, bad);

    const r = await once();
    assert.match(r.stderr, /ERROR .*STATE FILE CORRUPT/, 'the corruption is logged at ERROR level');
    const aside = (await readdir(path.join(lab.dir, stateDir))).filter((f) => f.startsWith('home.state.json.corrupt-'));
    assert.equal(aside.length, 1, 'the bad file is kept aside');
    assert.deepEqual(await readFile(path.join(lab.dir, stateDir, aside[0]!)), bad, 'kept byte for byte');
    assert.deepEqual(tags(), ['s-a'], 'no alert for mail present when the state was rebuilt (existing: skip)');
    assert.match(await readFile(file, 'utf8'), /^\{"format":"pop2mqtt-state"/, 'a fresh valid state file');

    await lab.dovecot.deliver(USER, alarmMail('s-d'));
    const r2 = await once();
    assert.doesNotMatch(r2.stderr, /CORRUPT/);
    await sub.waitForAlerts((a) => a.some((x) => x.tag === 's-d'), 10_000, 'alert s-d');
    assert.deepEqual(tags(), ['s-a', 's-d'], 'mail arriving after the rebuild alerts once');
  });
}
