// Fault: state_dir on a tiny filesystem that fills up; a clear error, the last good state file intact, nothing lost or deleted unalerted, recovery when space returns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLab, startDaemon, until, waitForOutput, type Lab } from '../support/lab.js';
import { parseStateText } from '../../src/state/mailbox-state.js';
import { alarmMail, faultConfig, persistentSubscriber, maildirNames, deliverTracked, type PersistentSubscriber } from '../support/fault-lab.js';
import { within, sleep } from '../support/wait.js';

let lab: Lab;
let sub: PersistentSubscriber;
let scratch: string;
let fsKind = '';

/**
 * A 64 KB filesystem for state_dir: tmpfs when this container may mount it (as root it usually may), otherwise a
 * loop-mounted ext4 image. Throws when neither works: the test must not pretend.
 */
function mountSmallFs(dir: string): string {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    return 'tmpfs size=64k';
  } catch (err) {
    const img = path.join(scratch, 'small.img');
    try {
      execFileSync('truncate', ['-s', '1M', img]);
      execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', img], { stdio: 'pipe' });
      execFileSync('mount', ['-o', 'loop', img, dir], { stdio: 'pipe' });
      return 'loop-mounted ext4 1MB';
    } catch (err2) {
      throw new Error(`cannot mount a small filesystem: tmpfs: ${(err as Error).message}; loop ext4: ${(err2 as Error).message}`);
    }
  }
}

before(async () => {
  lab = await startLab();
  sub = await persistentSubscriber(lab.mosquitto.url, ['pop2mqtt/alerts/#'], `p2m-diskfull-${process.pid}`);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'p2m-diskfull-'));
});
after(async () => {
  await sub?.close();
  await lab?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Fill the filesystem until ENOSPC; returns the filler files (remove them to give the space back). */
let fillRound = 0;
async function fill(dir: string, leavePages = 0): Promise<string[]> {
  const files: string[] = [];
  const round = ++fillRound;
  const chunk = Buffer.alloc(4096, 0x61);
  for (let i = 0; ; i++) {
    const f = path.join(dir, `filler-${round}-${i}`);
    const fh = await open(f, 'w');
    files.push(f);
    let wrote = 0;
    try {
      for (;;) {
        await fh.write(chunk);
        wrote++;
        if (wrote === 1 && i < leavePages) break; // one-page files, freed later to leave exactly that much room
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      await fh.close();
      if (wrote === 0) {
        await unlink(f);
        files.pop();
      }
      break;
    }
    await fh.close();
  }
  return files;
}

const validState = (text: string) => parseStateText(text, 'home');

async function withSmallFs(name: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = path.join(scratch, name);
  await import('node:fs/promises').then((f) => f.mkdir(dir));
  fsKind = mountSmallFs(dir);
  try {
    await body(dir);
  } finally {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
  }
}

test('disk full: clear ENOSPC error, previous state intact, nothing deleted, recovery when space returns', { timeout: 90_000 }, async (t) => {
  await withSmallFs('full', async (dir) => {
    t.diagnostic(`state_dir on ${fsKind}`);
    const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: dir, keep: false }), 'diskfull.yaml');
    const names = new Map<string, string>();
    const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    try {
      names.set('f-1', await deliverTracked(lab, alarmMail('f-1')));
      await sub.waitForAlerts((a) => a.some((x) => x.tag === 'f-1'), 15_000, 'alert before the disk fills');
      const stateFile = path.join(dir, 'home.state.json');

      // Fill up: from now on no new file can be written in state_dir.
      let fillers = await fill(dir);
      await sleep(1_200); // a write that was under way when the disk filled has finished (or failed)
      fillers = [...fillers, ...(await fill(dir))];
      const snapshot = await readFile(stateFile, 'utf8');
      assert.equal(typeof validState(snapshot), 'object', 'the state file is valid when the disk fills');

      names.set('f-2', await deliverTracked(lab, alarmMail('f-2')));
      names.set('f-3', await deliverTracked(lab, alarmMail('f-3')));
      const [err] = await waitForOutput(d.output, /ERROR \[home\] poll failed code=ENOSPC error="ENOSPC: no space left on device[^\n]*/, 15_000);
      t.diagnostic(`error line: ${err}`);
      await sleep(2_500); // several failing polls
      assert.equal(d.child.exitCode, null, 'the daemon keeps running on a full disk');
      assert.equal(await readFile(stateFile, 'utf8'), snapshot, 'the last good state file is untouched');
      assert.equal(sub.alerts.filter((a) => a.tag !== 'f-1').length, 0, 'no alert is sent before it is on disk');
      const left = await maildirNames(lab);
      assert.ok(left.has(names.get('f-2')!) && left.has(names.get('f-3')!), 'unalerted mail stays on the server');
      const junk = (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
      assert.deepEqual(junk, [], 'failed writes leave no temp files');

      // Space returns: everything is alerted and then deleted.
      for (const f of fillers) await unlink(f);
      await sub.waitForAlerts((a) => ['f-2', 'f-3'].every((tag) => a.some((x) => x.tag === tag)), 20_000, 'alerts after space returned');
      await until(async () => {
        const now = await maildirNames(lab);
        return [...names.values()].every((n) => !now.has(n));
      }, 15_000, 'alerted mail deleted');
      await until(async () => (await readdir(path.join(dir, 'outbox'))).filter((f) => f.endsWith('.msg')).length === 0, 15_000, 'outbox empty');
      assert.equal(typeof validState(await readFile(stateFile, 'utf8')), 'object');
    } finally {
      d.child.kill('SIGTERM');
      const ex = await within(d.exited, 12_000);
      assert.equal(ex?.code, 0, `exit after SIGTERM:\n${d.output().slice(-3000)}`);
    }
  });
});

test('disk nearly full: the alert is written and sent but recording its ack fails; nothing is lost and it converges when space returns', { timeout: 90_000 }, async (t) => {
  await withSmallFs('nearly', async (dir) => {
    t.diagnostic(`state_dir on ${fsKind}`);
    const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: dir, keep: false }), 'nearlyfull.yaml');
    const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    sub.alerts.length = 0;
    try {
      await waitForOutput(d.output, /\[home\] poll /, 15_000);
      // Leave one free page: enough to rewrite the state, or to write one outbox entry, not both.
      const fillers = await fill(dir, 1);
      await unlink(fillers[0]!);
      const name = await deliverTracked(lab, alarmMail('n-1'));
      await sub.waitForAlerts((a) => a.some((x) => x.tag === 'n-1'), 15_000, 'the alert goes out');
      await waitForOutput(d.output, /recording an acknowledged alert failed; it stays in the outbox error="ENOSPC/, 10_000);
      assert.equal(d.child.exitCode, null, 'the daemon keeps running');

      // The entry is retried at the next polls (not only when another alert comes), and everything converges.
      for (const f of fillers.slice(1)) await unlink(f);
      await until(async () => (await readdir(path.join(dir, 'outbox'))).filter((f) => f.endsWith('.msg')).length === 0, 20_000, 'outbox empty after space returned');
      await until(async () => !(await maildirNames(lab)).has(name), 15_000, 'the alerted mail is deleted');
      const ids = new Set(sub.alerts.filter((a) => a.tag === 'n-1').map((a) => a.id));
      assert.equal(ids.size, 1, 'any repeat carries the same id');
      const state = validState(await readFile(path.join(dir, 'home.state.json'), 'utf8'));
      assert.equal(typeof state, 'object');
    } finally {
      d.child.kill('SIGTERM');
      const ex = await within(d.exited, 12_000);
      assert.equal(ex?.code, 0, `exit after SIGTERM:\n${d.output().slice(-3000)}`);
    }
  });
});
