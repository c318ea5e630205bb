// Fault: the broker is down while alerts pile up, and the agent restarts during the outage; every alert arrives once it is back, in order, and nothing is deleted before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { startLab, startDaemon, until, waitForOutput, type Lab } from '../support/lab.js';
import { alarmMail, faultConfig, persistentSubscriber, maildirNames, deliverTracked, type PersistentSubscriber } from '../support/fault-lab.js';
import { sleep, within } from '../support/wait.js';

let lab: Lab;
let sub: PersistentSubscriber;

before(async () => {
  lab = await startLab();
  sub = await persistentSubscriber(lab.mosquitto.url, ['pop2mqtt/alerts/#', 'pop2mqtt/bridge/state'], `p2m-outage-${process.pid}`);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

const outboxFiles = async (): Promise<string[]> =>
  (await readdir(path.join(lab.dir, 'state', 'outbox')).catch(() => [] as string[])).filter((f) => f.endsWith('.msg')).sort();

test('broker down: alerts wait in the outbox (across an agent restart), all arrive in order when it returns, mail deleted only after', { timeout: 120_000 }, async () => {
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state', keep: false }), 'outage.yaml');
  const names = new Map<string, string>();
  const deliver = async (tag: string) => names.set(tag, await deliverTracked(lab, alarmMail(tag)));

  let d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
  try {
    await deliver('o-01');
    await sub.waitForAlerts((a) => a.some((x) => x.tag === 'o-01'), 15_000, 'baseline alert');

    await lab.mosquitto.stop();
    const tags = Array.from({ length: 9 }, (_, i) => `o-${String(i + 2).padStart(2, '0')}`);
    for (const tag of tags.slice(0, 5)) {
      await deliver(tag);
      await sleep(150);
    }
    await until(async () => (await outboxFiles()).length >= 5, 20_000, 'five alerts queued in the outbox while the broker is down');
    await waitForOutput(d.output, /broker has not acknowledged every alert yet/, 20_000);
    const left = await maildirNames(lab);
    for (const tag of tags.slice(0, 5)) assert.ok(left.has(names.get(tag)!), `${tag} must stay on the server while its alert is unacknowledged`);

    // Agent restart during the outage: SIGTERM, exit 0 in time; the outbox stays on disk.
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    const ex = await d.exited;
    assert.equal(ex.code, 0, `exit after SIGTERM with the broker down:\n${d.output().slice(-3000)}`);
    assert.ok(Date.now() - t0 < 10_000, `stopped in ${Date.now() - t0} ms`);
    assert.ok((await outboxFiles()).length >= 5, 'outbox persisted across the restart');

    for (const tag of tags.slice(5)) await deliver(tag);
    d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    await waitForOutput(d.output, /outbox restored/, 15_000);
    await until(async () => (await outboxFiles()).length >= tags.length, 20_000, 'every alert queued while the broker is down');
    const left2 = await maildirNames(lab);
    for (const tag of tags) assert.ok(left2.has(names.get(tag)!), `${tag} still on the server during the outage`);
    assert.equal(sub.alerts.filter((a) => tags.includes(a.tag!)).length, 0, 'nothing could have been delivered yet');

    await lab.mosquitto.restart();
    await sub.waitForAlerts((a) => tags.every((t) => a.some((x) => x.tag === t)), 30_000, 'every alert queued during the outage');
    const order = sub.alerts.filter((a) => tags.includes(a.tag!)).map((a) => a.tag!);
    const firsts = order.filter((t, i) => order.indexOf(t) === i);
    assert.deepEqual(firsts, tags, `alerts arrive in mail order: ${order.join(' ')}`);

    await until(async () => (await outboxFiles()).length === 0, 15_000, 'outbox drained');
    await until(async () => {
      const now = await maildirNames(lab);
      return [...names.values()].every((n) => !now.has(n));
    }, 20_000, 'alerted mail deleted (keep: false) after the broker acknowledged');
  } finally {
    if (d.child.exitCode === null) {
      d.child.kill('SIGTERM');
      await within(d.exited, 12_000);
    }
  }
});
