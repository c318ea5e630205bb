// A poll's batches reach the outbox in batch order even when an earlier write is slower; a failed write stops the later ones; queued alerts count against the outbox's room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderedWrites } from '../../src/alerts/ordered-writes.js';

/** A batch whose write takes until `release()` (or fails with `error`), recording when it started and ended. */
function batch(name: string, log: string[], o: { messages?: number; error?: Error } = {}) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  return {
    release,
    togetherSize: { messages: o.messages ?? 1, bytes: 10 },
    async enqueueTogether(): Promise<void> {
      log.push(`${name} start`);
      await gate;
      if (o.error) throw o.error;
      log.push(`${name} written`);
    },
  };
}

test('batches are written one after another in the order added, each followed by its state save', async () => {
  const log: string[] = [];
  const w = new OrderedWrites({ hasRoom: () => true });
  const a = batch('a', log);
  const b = batch('b', log);
  w.add(a, async () => void log.push('a saved'));
  w.add(b, async () => void log.push('b saved'));
  b.release(); // b is ready first: it still waits for a
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['a start']);
  a.release();
  await w.done();
  assert.deepEqual(log, ['a start', 'a written', 'a saved', 'b start', 'b written', 'b saved']);
});

test('a failed write fails done(), sets failed, and no later batch is written', async () => {
  const log: string[] = [];
  const w = new OrderedWrites({ hasRoom: () => true });
  const a = batch('a', log, { error: new Error('ENOSPC') });
  const b = batch('b', log);
  w.add(a, async () => void log.push('a saved'));
  w.add(b, async () => void log.push('b saved'));
  a.release();
  b.release();
  await assert.rejects(w.done(), /ENOSPC/);
  assert.equal(w.failed, true);
  assert.deepEqual(log, ['a start']);
});

test('alerts queued behind a running write count against the outbox room until their write starts', async () => {
  const seen: Array<{ messages: number; bytes: number }> = [];
  const w = new OrderedWrites({ hasRoom: (q) => (seen.push({ ...q! }), true) });
  const log: string[] = [];
  const a = batch('a', log, { messages: 3 });
  const b = batch('b', log, { messages: 5 });
  w.add(a, async () => {});
  w.add(b, async () => {});
  w.hasRoom(); // both queued: no write has started yet
  await new Promise((r) => setImmediate(r)); // a's write started: the outbox counts it itself
  w.hasRoom();
  a.release();
  await new Promise((r) => setImmediate(r));
  w.hasRoom();
  b.release();
  await w.done();
  w.hasRoom();
  assert.deepEqual(seen.map((q) => q.messages), [8, 5, 0, 0]);
});
