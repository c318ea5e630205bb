// Fault: SIGTERM/SIGINT during a poll frozen after DELE reached the server, and while idle; exit 0 within 10 s, offline published, nothing deleted without QUIT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLab, startDaemon, runCli, waitForOutput, type Lab } from '../support/lab.js';
import { subscribe } from '../support/mqtt-subscriber.js';
import { alarmMail, faultConfig, persistentSubscriber, maildirNames, deliverTracked, type PersistentSubscriber } from '../support/fault-lab.js';
import { within, sleep } from '../support/wait.js';
import { startRelay } from '../support/relay.js';

let lab: Lab;
let sub: PersistentSubscriber;

before(async () => {
  lab = await startLab();
  sub = await persistentSubscriber(lab.mosquitto.url, ['pop2mqtt/alerts/#'], `p2m-shutdown-${process.pid}`);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

async function retainedState(): Promise<unknown> {
  const s = await subscribe(lab.mosquitto.url, ['pop2mqtt/bridge/state']);
  try {
    return (await s.waitFor((m) => m.retain, 5_000)).json;
  } finally {
    await s.close();
  }
}

test('SIGTERM while the session hangs right after DELE reached the server: exit 0 within 10 s, offline published, nothing deleted; the next run deletes without re-alerting', { timeout: 60_000 }, async () => {
  const tap = await startRelay('127.0.0.1', lab.dovecot.port, { recordClientLines: true });
  try {
    const names = [await deliverTracked(lab, alarmMail('g-1')), await deliverTracked(lab, alarmMail('g-2'))];
    const held = tap.pauseAfterClientLine(/^DELE /);
    const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-term', tls: 'none', port: tap.port, keep: false }), 'term.yaml');
    const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    try {
      await within(held, 20_000);
      assert.ok(tap.clientLines.some((l) => l.startsWith('DELE ')), 'the agent sent DELE (its alerts were acknowledged)');
      await sub.waitForAlerts((a) => ['g-1', 'g-2'].every((t) => a.some((x) => x.tag === t)), 5_000, 'alerts before DELE');
      await sleep(300); // let Dovecot act on the DELE it received

      const t0 = Date.now();
      d.child.kill('SIGTERM');
      const ex = await within(d.exited, 12_000);
      const took = Date.now() - t0;
      assert.ok(ex, 'exited');
      assert.equal(ex.code, 0, `exit code after SIGTERM:\n${d.output().slice(-3000)}`);
      assert.ok(took < 10_000, `stopped in ${took} ms`);
      assert.match(d.output(), /SIGTERM received: stopping/);
      assert.ok(!tap.clientLines.includes('QUIT'), 'no QUIT was sent');
    } finally {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
    }
    assert.deepEqual(await retainedState(), { state: 'offline' }, 'offline published on the way out');
    const left = await maildirNames(lab);
    for (const n of names) assert.ok(left.has(n), 'a session aborted before QUIT deletes nothing');
  } finally {
    await tap.close();
  }

  // Next run (no tap): the acknowledged alerts were recorded, so the mail is deleted and not alerted again.
  const alerts = sub.alerts.length;
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-term', keep: false }), 'term2.yaml');
  const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /deleted=2/);
  await sleep(300);
  assert.equal(sub.alerts.length, alerts, 'no second alert for mail whose alert was acknowledged');
  assert.equal((await maildirNames(lab)).size, 0);
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`${sig} while idle: exit 0 quickly, offline published`, { timeout: 30_000 }, async () => {
    const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-idle', schedule: '0 0 1 1 *' }), 'idle.yaml');
    const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    await waitForOutput(d.output, /pop2mqtt started/, 15_000);
    assert.deepEqual(await retainedState(), { state: 'online' });
    const t0 = Date.now();
    d.child.kill(sig);
    const ex = await within(d.exited, 12_000);
    assert.equal(ex?.code, 0, d.output());
    assert.ok(Date.now() - t0 < 3_000, `idle stop took ${Date.now() - t0} ms`);
    assert.deepEqual(await retainedState(), { state: 'offline' });
  });
}
