// A full garbage collection after downloaded messages once their buffers add up: V8 otherwise frees them only at its next full GC, which a first poll may never reach.
//
// Why (scripts/bench/memory-w4.ts --messages 300, Node 20): a RETRed message passes through several buffers (socket
// reads, 64 KiB parser writes, decoded attachment parts, the attachment itself until its PUBACK). Those that outlive
// two scavenges move to the old generation and are freed by a full GC only, which V8 starts for external memory after
// 64 MB of it; the old generation itself grows too slowly in such a poll to start one. The W4 poll (15 snapshot
// RETRs) peaked with 9.4 MiB of array buffers of which 5.5 MiB were garbage (a full GC every 20 ms: 3.9 MiB). With a
// collection after each download once 2 MiB more are held: peak 69.5/69.8 -> 65.1/66.3 MiB (max array buffers 10.4 ->
// 6.0/7.1 MiB), same CPU within noise (a few collections of a 16 MB heap, about 5 ms each); 4 MiB took 1.6 MiB off,
// 1 MiB no more than 2.
// POP2MQTT_HEAP_POLICY=off (or a V8 version not measured) leaves V8 alone, as for heap-policy.ts.
import { v8FlagsGiven, type V8FlagsInput } from './v8-flags-given.js';
import { fullGcFunction } from './full-gc.js';

/** How many more array buffer bytes than just after the last collection make the next downloaded message collect. */
export const BODY_GARBAGE_BYTES = 2 * 1024 * 1024;

let collect: (() => void) | null | undefined;
let arrayBuffersAfterLast = 0;

/** V8's gc() (src/full-gc.ts, shared with the daemon's heap trim); null when the policy is off. */
async function fullGc(o: V8FlagsInput): Promise<(() => void) | null> {
  if (collect !== undefined) return collect;
  if (!v8FlagsGiven(o)) return (collect = null);
  return (collect = await fullGcFunction());
}

/**
 * A downloaded message was let go (its alerts queued): collects when the process holds BODY_GARBAGE_BYTES more array
 * buffer bytes than after the last collection. Returns whether it collected.
 */
export async function downloadReleased(o: V8FlagsInput = {}): Promise<boolean> {
  const held = process.memoryUsage().arrayBuffers;
  if (held - arrayBuffersAfterLast < BODY_GARBAGE_BYTES) return false;
  const gc = await fullGc(o);
  if (!gc) return false;
  gc();
  arrayBuffersAfterLast = process.memoryUsage().arrayBuffers;
  return true;
}
