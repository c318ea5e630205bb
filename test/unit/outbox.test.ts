// Tests of the disk outbox: persistence before send, order, removal only on ack, restart recovery, limits and drop policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Outbox, type OutboxItem, type OutboxEntry } from '../../src/alerts/outbox.js';
import { silentLogger } from '../../src/log.js';

const item = (n: number, extra: Partial<OutboxItem> = {}): OutboxItem => ({
  key: `k${n}#0`, mailbox: 'home', uid: `u${n}`, messageKeys: [`k${n}#0`], deleteAfter: false,
  topic: `t/${n}`, qos: 1, retain: false, payload: Buffer.from(`payload-${n}`), ...extra,
});

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-outbox-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const limits = { maxMessages: 100, maxBytes: 1 << 20, whenFull: 'stop_polling' as const };

test('entries are on disk before sending, sent in order, removed only after ack', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  await box.enqueue([item(1), item(2), item(3)]);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.msg')).length, 3);
  const sent: string[] = [];
  const acked: string[] = [];
  box.attach(async (e) => { sent.push(e.topic); }, async (e) => { acked.push(e.key); }, async () => {});
  box.kick();
  const left = await box.waitFor(['k1#0', 'k2#0', 'k3#0'], 5000);
  assert.deepEqual(left, []);
  assert.deepEqual(sent, ['t/1', 't/2', 't/3']);
  assert.deepEqual(acked, ['k1#0', 'k2#0', 'k3#0']);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.msg')).length, 0);
}));

test('a failed send keeps the entry; a restart restores it in order and the same key is not queued twice', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  box.attach(async () => { throw new Error('offline'); }, async () => {}, async () => {});
  await box.enqueue([item(1), item(2, { payload: Buffer.from([0, 1, 2, 255]) })]);
  await box.enqueue([item(1)]);
  assert.equal(box.size, 2);
  const left = await box.waitFor(['k1#0'], 200);
  assert.deepEqual(left, ['k1#0']);
  const again = await Outbox.open(dir, limits, silentLogger);
  assert.equal(again.size, 2);
  const got: OutboxEntry[] = [];
  again.attach(async (e) => { got.push(e); }, async () => {}, async () => {});
  again.kick();
  await again.waitFor(['k1#0', 'k2#0'], 5000);
  assert.deepEqual(got.map((e) => e.key), ['k1#0', 'k2#0']);
  assert.deepEqual([...got[1]!.payload], [0, 1, 2, 255]);
}));

test('a torn entry file is set aside at open, not sent', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  await box.enqueue([item(1)]);
  const name = (await readdir(dir)).find((n) => n.endsWith('.msg'))!;
  await writeFile(path.join(dir, name), '{"v":1,"key":"k1#0","length":999}\nshort');
  const again = await Outbox.open(dir, limits, silentLogger);
  assert.equal(again.size, 0);
  assert.ok((await readdir(dir)).some((n) => n.endsWith('.corrupt')));
}));

test('stop_polling: hasRoom turns false at the message limit', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, { ...limits, maxMessages: 2 }, silentLogger);
  await box.enqueue([item(1)]);
  assert.equal(box.hasRoom(), true);
  await box.enqueue([item(2)]);
  assert.equal(box.hasRoom(), false);
}));

test('drop_oldest: the oldest entries go, are counted and reported', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, { maxMessages: 2, maxBytes: 1 << 20, whenFull: 'drop_oldest' }, silentLogger);
  const dropped: string[] = [];
  box.attach(async () => { throw new Error('offline'); }, async () => {}, async (e) => { dropped.push(e.key); });
  await box.enqueue([item(1), item(2), item(3), item(4)]);
  assert.equal(box.size, 2);
  assert.equal(box.dropped, 2);
  assert.deepEqual(dropped, ['k1#0', 'k2#0']);
  assert.deepEqual(box.pendingFor('home').map((e) => e.key), ['k3#0', 'k4#0']);
}));
