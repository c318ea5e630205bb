// Proves when a daemon's poll asks for a full GC: only once the heap in use has grown GARBAGE_LIMIT over the smallest size seen, never with POP2MQTT_HEAP_POLICY=off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GARBAGE_LIMIT, trimHeapAfterPoll } from '../../src/heap-trim.js';

const V20 = '11.3.244.8-node.38';
const MiB = 1024 * 1024;

test('a full GC only after GARBAGE_LIMIT of growth over the smallest heap seen; the size after it is the new mark', async () => {
  let used = 10 * MiB;
  const trim = () => trimHeapAfterPoll({ env: {}, execArgv: [], v8Version: V20, usedHeap: () => used });
  assert.equal(await trim(), false);
  used = 9 * MiB; // V8's own GC: a lower mark
  assert.equal(await trim(), false);
  used = 9 * MiB + GARBAGE_LIMIT - 1;
  assert.equal(await trim(), false);
  used = 9 * MiB + GARBAGE_LIMIT;
  assert.equal(await trim(), true); // a real full GC ran; the mark is the size read after it
  used = 9 * MiB + GARBAGE_LIMIT + 1024;
  assert.equal(await trim(), false);
});

test('POP2MQTT_HEAP_POLICY=off, or a V8 it was not measured on, leaves V8 alone', async () => {
  const huge = () => 10_000 * MiB;
  assert.equal(await trimHeapAfterPoll({ env: { POP2MQTT_HEAP_POLICY: 'off' }, execArgv: [], v8Version: V20, usedHeap: huge }), false);
  assert.equal(await trimHeapAfterPoll({ env: {}, execArgv: [], v8Version: '13.6.233.10-node.18', usedHeap: huge }), false);
});

test('the GC it runs is real and leaves no gc global behind', async () => {
  let used = 0;
  const trim = () => trimHeapAfterPoll({ env: {}, execArgv: [], v8Version: V20, usedHeap: () => used });
  await trim();
  used += GARBAGE_LIMIT * 10;
  assert.equal(await trim(), true);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
});
