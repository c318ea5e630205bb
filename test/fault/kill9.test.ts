// Fault: `pop2mqtt run` killed with SIGKILL at random moments while alarm mail keeps arriving; no alert may be lost and no mail deleted unalerted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { startLab, startDaemon, runCli, USER, waitForOutput, type Lab } from '../support/lab.js';
import { alarmMail, newsMail, faultConfig, persistentSubscriber, maildirNames, deliverTracked, type PersistentSubscriber } from '../support/fault-lab.js';
import { sleep, within } from '../support/wait.js';
import { prng } from '../support/prng.js';

const ITERATIONS = Math.max(1, Number(process.env.POP2MQTT_FAULT_ITERATIONS ?? 50));
const SEED = Number(process.env.POP2MQTT_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));

let lab: Lab;
let sub: PersistentSubscriber;

before(async () => {
  lab = await startLab();
  sub = await persistentSubscriber(lab.mosquitto.url, ['pop2mqtt/alerts/#'], `p2m-kill9-${process.pid}`);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

test(`kill -9 at random moments (${ITERATIONS} runs): every alarm alerted, nothing deleted without an acknowledged alert, duplicates share the id`, { timeout: 60_000 + ITERATIONS * 6_000 }, async (t) => {
  t.diagnostic(`seed=${SEED} iterations=${ITERATIONS} (replay with POP2MQTT_FAULT_SEED=${SEED} POP2MQTT_FAULT_ITERATIONS=${ITERATIONS})`);
  const rnd = prng(SEED);
  const alarms = new Map<string, string>(); // tag -> maildir name
  const news = new Map<string, string>();
  let n = 0;
  const deliverAlarm = async () => {
    const tag = `k${SEED.toString(36)}-${++n}`;
    alarms.set(tag, await deliverTracked(lab, alarmMail(tag, { camera: 1 + (n % 4) })));
  };
  const stats = { uniform: 0, afterPollStart: 0, afterAlert: 0, exitedBeforeKill: 0 };
  const started = Date.now();
  const crashes: string[] = [];

  for (let i = 0; i < ITERATIONS; i++) {
    const before = Math.floor(rnd() * 4);
    for (let k = 0; k < before; k++) await deliverAlarm();
    if (rnd() < 0.3) {
      const tag = `news-${i}`;
      news.set(tag, await deliverTracked(lab, newsMail(tag)));
    }
    const keep = rnd() < 0.5;
    const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state', keep, logLevel: 'debug' }), `kill9-${i % 2}.yaml`);
    const alertsBefore = sub.alerts.length;
    const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    try {
      await waitForOutput(d.output, /pop2mqtt started/, 15_000);
      const strategy = rnd();
      const deliverDuring = rnd() < 0.5 ? rnd() * 800 : -1;
      const deliveryDone = deliverDuring >= 0 ? sleep(deliverDuring).then(deliverAlarm) : Promise.resolve();
      if (strategy < 0.34) {
        stats.uniform++;
        await sleep(rnd() * 1500);
      } else if (strategy < 0.67) {
        // Just after a session began: somewhere inside connect, login, UIDL, TOP, publish, ack, DELE or QUIT.
        stats.afterPollStart++;
        const sessions = (d.output().match(/\[home\/pop3\] connecting/g) ?? []).length;
        await until(() => (d.output().match(/\[home\/pop3\] connecting/g) ?? []).length > sessions, 2_500);
        await sleep(rnd() * 120);
      } else {
        // Right after the broker forwarded an alert: the window between PUBACK, recording the ack, DELE and QUIT.
        stats.afterAlert++;
        await until(() => sub.alerts.length > alertsBefore, 2_500);
        await sleep(rnd() * 40);
      }
      await deliveryDone;
    } finally {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      else {
        stats.exitedBeforeKill++;
        crashes.push(d.output().slice(-2000));
      }
      const ex = await within(d.exited, 5_000);
      assert.ok(ex, 'daemon did not die after SIGKILL');
    }
  }

  assert.deepEqual(crashes, [], 'the daemon never exits by itself');

  // A final clean run drains the outbox and handles whatever is left.
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state', keep: false }), 'kill9-final.yaml');
  const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `final once failed:\n${r.stderr}`);
  // Alerts published by the final run may still be in flight to the subscriber.
  await sub.waitForAlerts((a) => [...alarms.keys()].every((tag) => a.some((x) => x.tag === tag)), 10_000, 'an alert for every alarm mail');
  await sleep(300);

  const outboxLeft = (await readdir(path.join(lab.dir, 'state', 'outbox'))).filter((f) => f.endsWith('.msg'));
  assert.deepEqual(outboxLeft, [], 'outbox drained by the final run');

  const byTag = new Map<string, Set<string>>();
  for (const a of sub.alerts) {
    assert.ok(a.tag, `alert with an unexpected subject: ${a.subject}`);
    const ids = byTag.get(a.tag) ?? new Set<string>();
    ids.add(a.id);
    byTag.set(a.tag, ids);
  }
  // Every matching mail produced at least one alert, and duplicates carry the same id.
  for (const tag of alarms.keys()) {
    const ids = byTag.get(tag);
    assert.ok(ids, `alarm ${tag} was never alerted`);
    assert.equal(ids.size, 1, `alarm ${tag} was alerted under several ids: ${[...ids].join(', ')}`);
  }
  for (const tag of byTag.keys()) assert.ok(alarms.has(tag), `alert for a mail never delivered: ${tag}`);
  const allIds = [...byTag.values()].map((s) => [...s][0]);
  assert.equal(new Set(allIds).size, allIds.length, 'different mails never share an alert id');

  // Nothing left the server without an acknowledged alert; non-matching mail never leaves.
  const left = await maildirNames(lab);
  const deleted = [...alarms].filter(([, name]) => !left.has(name)).map(([tag]) => tag);
  for (const tag of deleted) assert.ok(byTag.has(tag), `mail ${tag} was deleted without an alert`);
  for (const [tag, name] of news) assert.ok(left.has(name), `non-matching mail ${tag} was deleted`);

  // No leftovers of interrupted atomic writes after a clean run.
  const stateFiles = await readdir(path.join(lab.dir, 'state'));
  assert.deepEqual(stateFiles.filter((f) => f.endsWith('.tmp')), [], 'no temp files left behind in state_dir');

  const dups = sub.alerts.length - byTag.size;
  t.diagnostic(`alarms=${alarms.size} news=${news.size} alerts=${sub.alerts.length} duplicates=${dups} deleted=${deleted.length} ` +
    `kills: uniform=${stats.uniform} after-poll-start=${stats.afterPollStart} after-alert=${stats.afterAlert} ` +
    `exited-early=${stats.exitedBeforeKill} mailbox-left=${(await lab.dovecot.messageFiles(USER)).length} seconds=${Math.round((Date.now() - started) / 1000)}`);
});

async function until(fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn() && Date.now() < deadline) await sleep(5);
}
