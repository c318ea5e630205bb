// Tests of the saved UID state: atomic round trip, corruption detection and set-aside, pruning of vanished UIDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MAX_COMMAND_RECORDS, MailboxState, parseStateText } from '../../src/state/mailbox-state.js';
import { createLogger } from '../../src/log.js';

function captureLogger() {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'debug', write: (l) => lines.push(l), timestamps: false }) };
}

test('state round-trips through an atomic write and reload', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-state-'));
  try {
    const { logger } = captureLogger();
    const first = await MailboxState.load(dir, 'home', logger);
    assert.equal(first.outcome, 'new');
    const st = first.state;
    st.syncServer(['a', 'b', 'c'], { count: 3, size: 300 });
    st.markDone('a');
    st.recordAck('b', 'alert1#0');
    st.markDone('c', { deleteOnServer: true });
    await st.flush();
    assert.equal(st.isDirty, false);
    const again = await MailboxState.load(dir, 'home', logger);
    assert.equal(again.outcome, 'loaded');
    assert.ok(again.state.isDone('a'));
    assert.ok(!again.state.isDone('b'));
    assert.deepEqual([...again.state.ackedAlerts('b')], ['alert1#0']);
    assert.deepEqual(again.state.data.deletePending, ['c']);
    assert.deepEqual(again.state.data.serverUids, ['a', 'b', 'c']);
    // No temp files left behind.
    assert.deepEqual((await readdir(dir)).sort(), ['home.state.json']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('UIDs gone from the server are forgotten; confirmed deletions leave the lists', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-state-'));
  try {
    const { state: st } = await MailboxState.load(dir, 'home', captureLogger().logger);
    st.syncServer(['a', 'b', 'c'], { count: 3, size: 3 });
    st.markDone('a');
    st.markDone('b', { deleteOnServer: true });
    st.recordFailure('c');
    st.syncServer(['b', 'd'], { count: 2, size: 2 });
    assert.ok(!st.isDone('a'));
    assert.equal(st.data.failures.c, undefined);
    assert.deepEqual(st.data.deletePending, ['b']);
    st.confirmDeleted(['b']);
    assert.deepEqual(st.data.deletePending, []);
    assert.deepEqual(st.data.serverUids, ['d']);
    assert.equal(st.data.stat, null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const [name, mutate] of [
  ['truncated', (t: string) => t.slice(0, Math.floor(t.length / 2))],
  ['garbage', () => '\u0000\u0001garbage that is not a state file'],
  ['one flipped byte', (t: string) => t.replace('"done":["a"]', '"done":["b"]')],
  ['empty', () => ''],
] as const) {
  test(`a ${name} state file is kept aside, logged loudly, and the state starts over`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-state-'));
    try {
      const cap = captureLogger();
      const { state: st } = await MailboxState.load(dir, 'home', cap.logger);
      st.syncServer(['a'], { count: 1, size: 1 });
      st.markDone('a');
      await st.flush();
      const file = MailboxState.fileFor(dir, 'home');
      const text = await readFile(file, 'utf8');
      await writeFile(file, mutate(text));
      const res = await MailboxState.load(dir, 'home', cap.logger);
      assert.equal(res.outcome, 'recovered');
      assert.equal(res.state.isDone('a'), false);
      const names = await readdir(dir);
      assert.ok(names.some((n) => /^home\.state\.json\.corrupt-/.test(n)), `kept aside: ${names.join(',')}`);
      assert.ok(cap.lines.some((l) => l.includes('STATE FILE CORRUPT')), cap.lines.join('\n'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('a state file of another mailbox is rejected', () => {
  const body = JSON.stringify({ ...MailboxState.empty('other') });
  const res = parseStateText(`{"format":"pop2mqtt-state","version":1,"sha256":"x"}\n${body}\n`, 'home');
  assert.equal(typeof res, 'string');
});

test('command replay memory: once per key, a retry of the same message, kept across reloads, expired after its window', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-state-'));
  try {
    const { logger } = captureLogger();
    const st = (await MailboxState.load(dir, 'home', logger)).state;
    const win = { forgetAfterMs: 30 * 86_400_000, evictableAfterMs: 3_900_000 };
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(st.claimCommand('k1', 'uid-a', t0, win), 'claimed');
    assert.equal(st.claimCommand('k1', 'uid-a', t0 + 1000, win), 'again', 'the same message, not done yet (e.g. a failed enqueue), may act');
    assert.equal(st.claimCommand('k1', 'uid-b', t0 + 1000, win), 'replay', 'a copy under another UID may not');
    // vanished UIDs do not take the memory with them
    st.syncServer(['uid-b'], { count: 1, size: 10 });
    await st.flush();
    const again = (await MailboxState.load(dir, 'home', logger)).state;
    assert.equal(again.claimCommand('k1', 'uid-c', t0 + 86_400_000, win), 'replay', 'the memory holds across a restart');
    // once done (or deleted), even the same UID is a replay: a server without UIDL gives identical copies the same id
    again.markDone('uid-a');
    assert.equal(again.claimCommand('k1', 'uid-a', t0 + 2000, win), 'replay');
    assert.equal(again.claimCommand('k2', 'uid-d', t0 + 2000, win), 'claimed');
    again.confirmDeleted(['uid-d']);
    assert.equal(again.claimCommand('k2', 'uid-d', t0 + 3000, win), 'replay');
    // forgotten after the window, and dropped from the file
    assert.equal(again.claimCommand('k1', 'uid-e', t0 + win.forgetAfterMs + 5000, win), 'claimed');
    assert.deepEqual(again.data.commands.map((c) => c.key), ['k1']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('command replay memory is bounded: old enough records make room, younger ones are never forgotten early', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-state-'));
  try {
    const st = (await MailboxState.load(dir, 'home', captureLogger().logger)).state;
    const win = { forgetAfterMs: 30 * 86_400_000, evictableAfterMs: 3_600_000 };
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < MAX_COMMAND_RECORDS; i++) assert.equal(st.claimCommand(`k${i}`, `u${i}`, t0 + i, win), 'claimed');
    // every record is younger than max_age + max_future: refuse rather than forget one
    assert.equal(st.claimCommand('new', 'u-new', t0 + 60_000, win), 'full');
    assert.equal(st.claimCommand('k0', 'u-x', t0 + 60_000, win), 'replay');
    // an hour later the oldest may go (the Date check refuses its copies by then); the file stays bounded
    assert.equal(st.claimCommand('new', 'u-new', t0 + 3_600_000, win), 'claimed');
    assert.equal(st.data.commands.length, MAX_COMMAND_RECORDS);
    assert.equal(st.data.commands.some((c) => c.key === 'k0'), false);
    await st.flush();
    const bytes = (await readFile(MailboxState.fileFor(dir, 'home'))).length;
    assert.ok(bytes < 200_000, `state file ${bytes} bytes`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
