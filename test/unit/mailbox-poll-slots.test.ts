// Many mailboxes on one agent: the per-mailbox poll offset (deterministic, within bounds, spread) and the shared poll-slot semaphore.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pollOffsetMs, PollSlots, spreadPhase } from '../../src/mailbox/poll-slots.js';

/** Start second (0..29) of each of n mailboxes on a 30 s schedule. */
const startSeconds = (n: number, spreadMs = 60_000) => Array.from({ length: n }, (_, i) => Math.floor(pollOffsetMs(spreadPhase(i), 30_000, spreadMs) / 1000));
const perSecond = (secs: number[]) => secs.reduce((acc, s) => (acc[s]!++, acc), new Array<number>(30).fill(0));

describe('poll spread', () => {
  it('is deterministic: the same position gives the same offset, and adding mailboxes moves none of the first ones', () => {
    assert.deepEqual(startSeconds(20), startSeconds(20));
    assert.deepEqual(startSeconds(100).slice(0, 20), startSeconds(20));
    assert.equal(spreadPhase(0), 0);
  });

  it('stays below the gap to the next tick and below the spread cap', () => {
    for (let i = 0; i < 500; i++) {
      const p = spreadPhase(i);
      assert.ok(p >= 0 && p < 1, `phase ${i}: ${p}`);
      const a = pollOffsetMs(p, 30_000, 60_000);
      assert.ok(a >= 0 && a < 30_000, `${i}: ${a}`);
      const b = pollOffsetMs(p, 300_000, 60_000);
      assert.ok(b >= 0 && b < 60_000, `${i}: ${b}`);
    }
  });

  it('is 0 when spreading is off, there is no gap, or the phase is out of range', () => {
    assert.equal(pollOffsetMs(0.5, 30_000, 0), 0);
    assert.equal(pollOffsetMs(0.5, 0, 60_000), 0);
    assert.equal(pollOffsetMs(0.5, -5, 60_000), 0);
    assert.equal(pollOffsetMs(1, 30_000, 60_000), 0);
    assert.equal(pollOffsetMs(Number.NaN, 30_000, 60_000), 0);
  });

  it('spreads 100 mailboxes on a 30 s schedule evenly: at most 4 starts in any second, every second used', () => {
    const counts = perSecond(startSeconds(100));
    assert.ok(Math.max(...counts) <= 4, counts.join(','));
    assert.ok(counts.every((c) => c >= 2), counts.join(','));
    // And any first k of them too (a gateway grows one mailbox at a time).
    for (const k of [5, 12, 20, 50]) assert.ok(Math.max(...perSecond(startSeconds(k))) <= Math.ceil(k / 30) + 2, `k=${k}: ${perSecond(startSeconds(k)).join(',')}`);
  });
});

describe('PollSlots', () => {
  it('never grants more than the limit; waiters run in arrival order as slots free up', async () => {
    const slots = new PollSlots(2);
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const gates: Array<() => void> = [];
    const jobs = Array.from({ length: 7 }, (_, i) => (async () => {
      const release = await slots.acquire();
      inside++;
      most = Math.max(most, inside);
      order.push(i);
      await new Promise<void>((r) => gates.push(r));
      inside--;
      release();
    })());
    // Open one gate at a time, whenever someone is waiting inside (bounded: 7 jobs).
    for (let k = 0; k < 7; k++) {
      for (let spin = 0; gates.length === 0 && spin < 1000; spin++) await new Promise((r) => setImmediate(r));
      assert.ok(slots.active <= 2);
      gates.shift()!();
    }
    await Promise.all(jobs);
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(slots.active, 0);
    assert.equal(slots.waiting, 0);
  });

  it('a release called twice frees one slot only', async () => {
    const slots = new PollSlots(1);
    const r1 = await slots.acquire();
    const second = slots.acquire();
    const third = slots.acquire();
    r1();
    r1();
    const r2 = await second;
    assert.equal(slots.active, 1);
    assert.equal(slots.waiting, 1);
    r2();
    (await third)();
    assert.equal(slots.active, 0);
  });

  it('an aborted waiter leaves the queue and takes no slot', async () => {
    const slots = new PollSlots(1);
    const held = await slots.acquire();
    const ac = new AbortController();
    const waiting = slots.acquire(ac.signal);
    const next = slots.acquire();
    ac.abort();
    await assert.rejects(waiting, /stopped while waiting for a poll slot/);
    assert.equal(slots.waiting, 1);
    held();
    (await next)();
    assert.equal(slots.active, 0);
    await assert.rejects(slots.acquire(ac.signal), /stopped while waiting/);
  });

  it('a raised limit admits waiters at once; a bad limit is refused', async () => {
    const slots = new PollSlots(1);
    const a = await slots.acquire();
    const b = slots.acquire();
    const c = slots.acquire();
    slots.setLimit(3);
    const [rb, rc] = await Promise.all([b, c]);
    assert.equal(slots.active, 3);
    a();
    rb();
    rc();
    assert.throws(() => slots.setLimit(0), /positive integer/);
    assert.throws(() => new PollSlots(1.5), /positive integer/);
  });
});
