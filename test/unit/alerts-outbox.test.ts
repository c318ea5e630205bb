// Tests of the disk outbox: persistence before send, order, removal only on ack, restart recovery, limits and drop policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

test('an entry with a non-numeric seq is set aside; later entries keep distinct numbered files', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  await box.enqueue([item(1), item(2), item(3)]);
  const names = (await readdir(dir)).filter((n) => n.endsWith('.msg')).sort();
  const second = path.join(dir, names[1]!);
  const [line, ...rest] = (await readFile(second, 'utf8')).split('\n');
  await writeFile(second, [JSON.stringify({ ...JSON.parse(line!), seq: 'abc' }), ...rest].join('\n'));
  const again = await Outbox.open(dir, limits, silentLogger);
  assert.deepEqual(again.pendingFor('home').map((e) => e.key), ['k1#0', 'k3#0']);
  await again.enqueue([item(4), item(5)]);
  const after = (await readdir(dir)).sort();
  assert.deepEqual(after.filter((n) => n.endsWith('.msg')), ['000000000001.msg', '000000000003.msg', '000000000004.msg', '000000000005.msg']);
  assert.ok(after.includes(`${names[1]}.corrupt`), 'the bad entry is kept aside for a person, not deleted');
  const third = await Outbox.open(dir, limits, silentLogger);
  assert.deepEqual(third.pendingFor('home').map((e) => e.key), ['k1#0', 'k3#0', 'k4#0', 'k5#0']);
}));

test('every header field of an entry is checked on load', () => withDir(async (dir) => {
  const bad: Record<string, unknown>[] = [
    { qos: 7 }, { topic: 'a/#' }, { topic: '' }, { key: 5 }, { mailbox: null }, { uid: undefined }, { messageKeys: 'k' },
    { messageKeys: [1] }, { deleteAfter: 'yes' }, { retain: 1 }, { userProperties: { a: 1 } }, { userProperties: [] },
    { seq: 1.5 }, { seq: -1 }, { seq: 2 }, { v: 2 },
  ];
  const box = await Outbox.open(dir, limits, silentLogger);
  await box.enqueue([item(1)]);
  const file = path.join(dir, '000000000001.msg');
  const good = await readFile(file, 'utf8');
  const [line, ...rest] = good.split('\n');
  for (const patch of bad) {
    await writeFile(file, [JSON.stringify({ ...JSON.parse(line!), ...patch }), ...rest].join('\n'));
    const again = await Outbox.open(dir, limits, silentLogger);
    assert.equal(again.size, 0, JSON.stringify(patch));
    assert.ok((await readdir(dir)).includes('000000000001.msg.corrupt'), JSON.stringify(patch));
    await rm(path.join(dir, '000000000001.msg.corrupt'));
  }
  await writeFile(file, good);
  assert.equal((await Outbox.open(dir, limits, silentLogger)).size, 1, 'the unpatched entry still loads');
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

test('the acknowledgements of a window are recorded together, and each entry file stays until its own record is done', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  await box.enqueue([1, 2, 3, 4, 5, 6].map((n) => item(n)));
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  box.attach(async () => {}, (e) => new Promise<void>((resolve) => {
    started.push(e.key);
    finish.set(e.key, resolve);
  }), async () => {});
  box.kick();
  const files = async () => (await readdir(dir)).filter((n) => n.endsWith('.msg')).length;
  // Every record of the window is under way before any has finished (bounded wait: 2,000 turns of the event loop).
  for (let spin = 0; started.length < 6 && spin < 2000; spin++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['k1#0', 'k2#0', 'k3#0', 'k4#0', 'k5#0', 'k6#0']);
  assert.equal(await files(), 6, 'no file removed while its acknowledgement is not recorded');
  finish.get('k3#0')!();
  for (let spin = 0; spin < 200; spin++) await new Promise((r) => setImmediate(r));
  const names = (await readdir(dir)).filter((n) => n.endsWith('.msg'));
  for (const seq of [1, 2, 4, 5, 6]) assert.ok(names.includes(`${String(seq).padStart(12, '0')}.msg`), `entry ${seq} kept until its acknowledgement is recorded`);
  for (const k of ['k1#0', 'k2#0', 'k4#0', 'k5#0', 'k6#0']) finish.get(k)!();
  assert.deepEqual(await box.waitFor(started, 5000), []);
  assert.equal(await files(), 0);
}));

test('one enqueue of many items (more than are written at once, one key twice) sends each once, in order', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  const sent: string[] = [];
  box.attach(async (e) => { sent.push(e.key); }, async () => {}, async () => {});
  const items = Array.from({ length: 70 }, (_, i) => item(i));
  await box.enqueue([...items, item(5)]);
  assert.deepEqual(await box.waitFor(items.map((x) => x.key), 5000), []);
  assert.deepEqual(sent, items.map((x) => x.key), 'each once, in order');
}));

test('the next window is sent while the acknowledgements of the last one are recorded; a failed record stops the sending', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  const items = Array.from({ length: 20 }, (_, i) => item(i + 1)); // two windows of 16 and 4
  await box.enqueue(items);
  const sent: string[] = [];
  const finish: Array<() => void> = [];
  box.attach(async (e) => { sent.push(e.key); }, () => new Promise<void>((resolve) => finish.push(resolve)), async () => {});
  box.kick();
  for (let spin = 0; sent.length < 20 && spin < 2000; spin++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, items.map((x) => x.key), 'the second window went out, each once, in order');
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.msg')).length, 20, 'no file removed before its record');
  for (let spin = 0; finish.length < 20 && spin < 2000; spin++) {
    finish.splice(0).forEach((f) => f());
    await new Promise((r) => setImmediate(r));
  }
  finish.splice(0).forEach((f) => f());
  assert.deepEqual(await box.waitFor(items.map((x) => x.key), 5000), []);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.msg')).length, 0);

  // A record that fails: that entry stays (file and all), nothing is sent again until the next kick.
  const failing = await Outbox.open(dir, limits, silentLogger);
  const more = Array.from({ length: 20 }, (_, i) => item(100 + i));
  await failing.enqueue(more);
  const sent2: string[] = [];
  failing.attach(async (e) => { sent2.push(e.key); }, async (e) => { if (e.key === 'k100#0') throw new Error('disk full'); }, async () => {});
  failing.kick();
  assert.deepEqual(await failing.waitFor(more.slice(1).map((x) => x.key), 5000), []);
  assert.deepEqual(await failing.waitFor(['k100#0'], 100), ['k100#0']);
  assert.equal(failing.size, 1);
  assert.deepEqual(sent2, more.map((x) => x.key), 'each sent once: the failed one is not resent before a kick');
}));

test('entries queued while the last window is being recorded are sent without waiting for that record', () => withDir(async (dir) => {
  const box = await Outbox.open(dir, limits, silentLogger);
  const sent: string[] = [];
  const finish: Array<() => void> = [];
  box.attach(async (e) => { sent.push(e.key); }, () => new Promise<void>((resolve) => finish.push(resolve)), async () => {});
  await box.enqueue([item(1)]);
  for (let spin = 0; finish.length < 1 && spin < 2000; spin++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, ['k1#0']);
  await box.enqueue([item(2)]); // the record of k1 is still running
  for (let spin = 0; sent.length < 2 && spin < 2000; spin++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, ['k1#0', 'k2#0'], 'k2 went out while k1 was being recorded');
  const acked = box.waitFor(['k1#0', 'k2#0'], 5000);
  let all = false;
  void acked.then(() => (all = true));
  for (let spin = 0; !all && spin < 2000; spin++) {
    finish.splice(0).forEach((f) => f()); // the records run one window after the other
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await acked, []);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.msg')).length, 0);
}));
