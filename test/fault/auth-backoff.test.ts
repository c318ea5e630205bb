// Fault: a wrong password; failed logins back off and stay under the per-hour cap, also when the agent is restarted again and again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startLab, startDaemon, runCli, waitForOutput, type Lab } from '../support/lab.js';
import { faultConfig } from '../support/fault-lab.js';
import { within, sleep } from '../support/wait.js';

let lab: Lab;

before(async () => {
  lab = await startLab();
});
after(async () => {
  await lab?.stop();
});

const WRONG = 'wrong-Password-0815';

/** Failed logins Dovecot saw (one "auth failed" disconnect per rejected session). */
async function dovecotAuthFailures(): Promise<number> {
  const log = await readFile(lab.dovecot.logFile, 'utf8');
  return (log.match(/auth failed/g) ?? []).length;
}

async function runFor(cfg: string, ms: number, waitFor?: RegExp): Promise<string> {
  const d = startDaemon(['run', '--config', cfg], { env: { ...lab.env, POP3_PASSWORD: WRONG }, cwd: lab.dir });
  try {
    await waitForOutput(d.output, /pop2mqtt started/, 15_000);
    if (waitFor) await waitForOutput(d.output, waitFor, 15_000);
    await sleep(ms);
    assert.equal(d.child.exitCode, null, 'daemon keeps running with a wrong password');
  } finally {
    d.child.kill('SIGTERM');
    const ex = await within(d.exited, 12_000);
    assert.equal(ex?.code, 0, `exit after SIGTERM:\n${d.output().slice(-2000)}`);
  }
  return d.output();
}

test('wrong password: one attempt, then retry_in_s = 1 h / cap; across restarts never more than the cap per hour', { timeout: 120_000 }, async () => {
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: './state-auth', authPerHour: 3, logLevel: 'debug' }), 'auth.yaml');
  const base = await dovecotAuthFailures();

  // First run: the schedule fires every second, but after the rejected login the next attempt is 20 min away.
  const out1 = await runFor(cfg, 4_000, /poll failed code=EAUTH/);
  assert.match(out1, /poll failed code=EAUTH .*retry_in_s=1200/);
  assert.equal((out1.match(/poll failed code=EAUTH/g) ?? []).length, 1, 'one failed login in 4 s of a 1 s schedule');
  assert.match(out1, /poll skipped: backing off/, 'scheduled polls are skipped while backing off');
  assert.ok(!out1.includes(WRONG), 'the password never appears in the log');

  // Restarts: the failures are persisted; each new process may use what is left of the cap (3 per hour), then waits.
  const out2 = await runFor(cfg, 1_500, /poll failed code=EAUTH/);
  const out3 = await runFor(cfg, 1_500, /poll failed code=EAUTH/);
  const out4 = await runFor(cfg, 3_000);
  assert.equal((out4.match(/poll failed code=EAUTH/g) ?? []).length, 0, `no login attempt once the cap is used up:\n${out4}`);
  const skipped = /poll skipped: backing off seconds=(\d+)/.exec(out4);
  assert.ok(skipped && Number(skipped[1]) > 3000, `the fourth process waits for the hour to pass: ${skipped?.[0]}`);

  // A requested poll in a new process (`once`) must not bypass the cap either.
  const r = await runCli(['once', '--config', cfg], { env: { ...lab.env, POP3_PASSWORD: WRONG }, cwd: lab.dir, timeoutMs: 30_000 });
  assert.equal(r.code, 1, `once reports the mailbox as not polled:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /code=EAUTH/, `once made no login attempt:\n${r.stderr}`);
  assert.match(r.stderr, /backing off/);

  const ours = [out1, out2, out3, out4].reduce((n, o) => n + (o.match(/poll failed code=EAUTH/g) ?? []).length, 0);
  assert.equal(ours, 3, 'three failed polls over four processes');
  // Dovecot's own count: every rejected session; the cap holds on the server side too.
  await sleep(300);
  const seen = (await dovecotAuthFailures()) - base;
  assert.equal(seen, 3, `Dovecot saw ${seen} failed logins (cap 3 per hour)`);

  const state = JSON.parse((await readFile(path.join(lab.dir, 'state-auth', 'home.state.json'), 'utf8')).split('\n')[1]!) as { authFailures: number[] };
  assert.equal(state.authFailures.length, 3, 'the failed logins are persisted for the next process');
});
