// Tests of the saved UID state: atomic round trip, corruption detection and set-aside, pruning of vanished UIDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MailboxState, parseStateText } from '../../src/state/mailbox-state.js';
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
