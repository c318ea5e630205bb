// A daemon's V8 heap kept near its live size between polls: a full GC once a few MiB of garbage have piled up since the last one.
//
// Why (scripts/binaries/footprint.ts, docs/bench.md "Binary daemon over N polls"): every poll leaves ~20 KB of
// objects that outlived two scavenges in the old generation, and V8 starts a full GC only when the old generation has
// grown by its minimum step (8 MB) since the last one. An idle daemon's anonymous RSS thus rose for hundreds of polls
// (x64 binary: 17.5 -> 24.3 MiB, poll 100 -> ~480) and stayed there. After each scheduled poll, when the heap in use
// has grown GARBAGE_LIMIT over the smallest size seen since the last full GC, one is run (a few ms on a heap this
// size, about every 100 idle polls). V8 offers no call for it without --expose-gc: src/full-gc.ts takes one from a new
// context (made at the first such GC, so never in a `once`). POP2MQTT_HEAP_POLICY=off
// leaves V8 alone, as for heap-policy.ts; a `gc` the user exposed is used as is.
import v8 from 'node:v8';
import { v8FlagsGiven, type V8FlagsInput } from './v8-flags-given.js';
import { fullGcFunction } from './full-gc.js';

/** Garbage allowed to pile up in the heap before a full GC is asked for. */
export const GARBAGE_LIMIT = 2 * 1024 * 1024;

let baseline = Infinity;

/**
 * After a daemon's poll: a full GC when the heap in use is GARBAGE_LIMIT over the smallest size seen since the last
 * one (V8's own full GCs lower that mark too); returns whether one ran; never throws (it runs detached after a poll). `usedHeap` is for tests.
 */
export async function trimHeapAfterPoll(o: V8FlagsInput & { usedHeap?: () => number } = {}): Promise<boolean> {
  if (!v8FlagsGiven(o)) return false;
  const used = o.usedHeap ?? (() => v8.getHeapStatistics().used_heap_size);
  const now = used();
  baseline = Math.min(baseline, now);
  if (now - baseline < GARBAGE_LIMIT) return false;
  try {
    (await fullGcFunction())();
  } catch {
    return false; // a Node that refuses the flag: V8 collects on its own schedule, as before
  } finally {
    baseline = used();
  }
  return true;
}
