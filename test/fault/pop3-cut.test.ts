// Fault: the POP3 connection dies in the middle of a RETR (then Dovecot is down for a while) or of a TOP reply; the daemon survives, deletes nothing, and recovers.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { startLab, startDaemon, until, USER, waitForOutput, type Lab } from '../support/lab.js';
import { startRelay, type Relay } from '../support/relay.js';
import { alarmMail, faultConfig, persistentSubscriber, maildirNames, deliverTracked, type PersistentSubscriber } from '../support/fault-lab.js';
import { within } from '../support/wait.js';

let lab: Lab;
let sub: PersistentSubscriber;
let relay: Relay;
let tlsRelay: Relay;

before(async () => {
  lab = await startLab();
  relay = await startRelay('127.0.0.1', lab.dovecot.port);
  tlsRelay = await startRelay('127.0.0.1', lab.dovecot.tlsPort);
  sub = await persistentSubscriber(lab.mosquitto.url, ['pop2mqtt/alerts/#'], `p2m-cut-${process.pid}`);
});
after(async () => {
  await sub?.close();
  await relay?.close();
  await tlsRelay?.close();
  await lab?.stop();
});
beforeEach(async () => {
  const md = lab.dovecot.maildir(USER);
  for (const s of ['new', 'cur']) for (const f of await readdir(path.join(md, s))) await rm(path.join(md, s, f));
  relay.clearCut();
  relay.resetCounters();
  sub.alerts.length = 0;
});

const BODY_RULE = `  - name: camera-snapshot
    when:
      from: { contains: "@nvr.local" }
      body: { contains: "snapshot attached" }
    publish:
      topic: "alerts/body"
`;

async function stopDaemon(d: ReturnType<typeof startDaemon>): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  d.child.kill('SIGTERM');
  const ex = await within(d.exited, 12_000);
  assert.equal(ex?.code, 0, `daemon exit after SIGTERM:\n${d.output().slice(-3000)}`);
}

test('connection cut in the middle of RETR, then Dovecot down: the daemon keeps polling, deletes nothing, recovers every alert', { timeout: 90_000 }, async () => {
  // A 3 MB body (the phrase near its start; body text is capped at 1 MB): the rule needs RETR, and a cut at 1 MB lands inside it.
  const big = alarmMail('r-big', { body: 'snapshot attached\r\n' + 'snapshot line of filler text to make the message big\r\n'.repeat(60_000) });
  const small = alarmMail('r-small', { body: 'snapshot attached\r\n' });
  const names = new Map([['r-big', await deliverTracked(lab, big)], ['r-small', await deliverTracked(lab, small)]]);
  relay.cutAfterServerBytes(1_000_000);
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-retr', tls: 'none', port: relay.port, keep: false, rules: BODY_RULE }), 'retr.yaml');
  const before = (await lab.dovecot.settled()).length;
  const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
  try {
    await until(() => relay.connectionStats.some((c) => c.cut), 20_000, 'a session cut inside RETR');
    await waitForOutput(d.output, /poll failed/, 10_000);
    const cutSession = (await lab.dovecot.logoutLines({ atLeast: before + 1 }))[before]!;
    assert.equal(cutSession.del, 0, `the cut session deleted nothing: ${cutSession.raw}`);
    assert.ok(cutSession.retr >= 1, `the cut happened during RETR: ${cutSession.raw}`);

    // Dovecot goes away entirely for a while: polls fail with a connection error, the daemon stays up.
    await lab.dovecot.stop();
    relay.clearCut();
    const fails = (d.output().match(/poll failed/g) ?? []).length;
    await waitForOutput(d.output, /poll failed/, 15_000, fails + 1);
    assert.equal(d.child.exitCode, null, 'daemon still running');
    assert.equal(sub.alerts.length, 0, 'no alert from a message that was never fully read');

    await lab.dovecot.restart();
    await sub.waitForAlerts((a) => ['r-big', 'r-small'].every((t) => a.some((x) => x.tag === t)), 30_000, 'both alerts after recovery');
    await until(async () => {
      const left = await maildirNames(lab);
      return [...names.values()].every((n) => !left.has(n));
    }, 15_000, 'both messages deleted after their alerts were acknowledged');
    assert.match(d.output(), /poll failed.*retry_in_s=/, 'failures are logged with their retry delay');
  } finally {
    await stopDaemon(d);
  }
});

test('connection cut in the middle of a pipelined TOP reply: nothing lost, nothing deleted, next poll recovers, one alert per mail', { timeout: 60_000 }, async () => {
  // Eight messages with ~15 KB of header each: TOP n 0 replies total ~120 KB, the cut at 40 KB lands inside them.
  const tags = Array.from({ length: 8 }, (_, i) => `t-${i + 1}`);
  const filler: Record<string, string> = {};
  for (let i = 0; i < 150; i++) filler[`X-Filler-${i}`] = 'f'.repeat(88);
  const names = new Map<string, string>();
  for (const tag of tags) names.set(tag, await deliverTracked(lab, alarmMail(tag, { extraHeaders: filler })));
  relay.cutAfterServerBytes(40_000, { once: true });
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-top', tls: 'none', port: relay.port, keep: false }), 'top.yaml');
  const before = (await lab.dovecot.settled()).length;
  const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
  try {
    await until(() => relay.connectionStats.some((c) => c.cut), 20_000, 'a session cut inside TOP');
    await sub.waitForAlerts((a) => tags.every((t) => a.some((x) => x.tag === t)), 30_000, 'every alert after the cut');
    await until(async () => {
      const left = await maildirNames(lab);
      return [...names.values()].every((n) => !left.has(n));
    }, 15_000, 'every message deleted after its alert was acknowledged');
    const sessions = await lab.dovecot.logoutLines({ atLeast: before + 2 });
    const cut = sessions[before]!;
    assert.equal(cut.del, 0, `the cut session deleted nothing: ${cut.raw}`);
    assert.ok(cut.top >= 1 && cut.retr === 0, `the cut happened during TOP: ${cut.raw}`);
    assert.match(d.output(), /poll failed/);
    assert.equal(d.child.exitCode, null, 'daemon still running');
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(sub.alerts.length, tags.length, `one alert per mail: ${sub.alerts.map((a) => a.tag).join(' ')}`);
  } finally {
    await stopDaemon(d);
  }
});

test('connection cut during the TLS handshake: a network error, retried with the normal backoff and never counted as a failed login', { timeout: 60_000 }, async () => {
  await deliverTracked(lab, alarmMail('h-1'));
  tlsRelay.cutAfterServerBytes(200, { once: true, reset: true });
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-tls', port: tlsRelay.port, keep: true }), 'tls.yaml');
  const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
  try {
    await until(() => tlsRelay.connectionStats.some((c) => c.cut), 20_000, 'a session cut inside the TLS handshake');
    const [line] = await waitForOutput(d.output, /poll failed.*/, 10_000);
    const retry = Number(/retry_in_s=(\d+)/.exec(line!)?.[1]);
    assert.ok(retry <= 2, `retry after a cut handshake follows backoff.max (2 s), got: ${line}`);
    await sub.waitForAlerts((a) => a.some((x) => x.tag === 'h-1'), 15_000, 'the alert after the next poll');
    // The state is saved just after the acknowledgement that released the alert: wait for it, bounded.
    const file = path.join(lab.dir, 'state-tls', 'home.state.json');
    let state = '';
    await until(async () => {
      state = await readFile(file, 'utf8').catch(() => '');
      return state.includes('"authFailures"');
    }, 10_000, 'the state file');
    assert.match(state, /"authFailures":\[\]/, 'a network error is not a failed login');
  } finally {
    await stopDaemon(d);
  }
});
