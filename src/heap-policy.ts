// V8 heap sizing for a long-lived agent on a small device, set once at start: the young generation keeps its initial size and the old one grows in small steps.
//
// Why (measured with scripts/bench/memory-w4.ts, 1,000-message first poll, Node 20): V8 sizes the heap for a desktop.
// Its young generation grows from 2 x 1 to 2 x 16 MB as soon as a poll allocates briskly, and after each full GC the
// old generation may grow to about twice its live size before the next one. Buffers that outlive two scavenges
// (socket reads, MIME parts, MQTT copies) are freed only by a full GC, and V8 starts one for external memory only
// after 64 MB of it. A first poll that RETRs 50 snapshot mails thus peaked at 183 MiB of which about 55 MiB was
// garbage; with these two flags it peaks at 112 MiB (idle one-shot poll: 88 -> 83 MiB), for about 15 % more time.
// Both flags are read by V8 whenever it resizes the heap, so setting them after start works (checked on Node 20
// and 22); a flag the process was started with (execArgv, NODE_OPTIONS) wins.
import v8 from 'node:v8';
import { v8FlagsGiven, type V8FlagsInput } from './v8-flags-given.js';

/** [flag, spellings that mean the user sized this part of the heap themselves]. */
const POLICY: ReadonlyArray<readonly [string, readonly string[]]> = [
  // Keep the semi-spaces at their initial size instead of doubling them up to --max-semi-space-size.
  ['--semi-space-growth-factor=1', ['semi-space', 'semi_space']],
  // Old generation limit after a full GC: live size + 20 % (V8 otherwise allows up to 4x on a fast machine).
  ['--heap-growing-percent=20', ['heap-growing-percent', 'heap_growing_percent', 'max-old-space-size', 'max_old_space_size']],
];

export type HeapPolicyInput = V8FlagsInput;

/** The flags applyHeapPolicy() would set for this process (empty when switched off or not applicable). */
export function heapPolicyFlags(o: HeapPolicyInput = {}): string[] {
  const args = v8FlagsGiven(o);
  if (!args) return [];
  const given = args.join(' ');
  return POLICY.filter(([, own]) => !own.some((s) => given.includes(s))).map(([flag]) => flag);
}

/** Set the heap policy's V8 flags (see above); returns what was set. POP2MQTT_HEAP_POLICY=off leaves V8's defaults. */
export function applyHeapPolicy(o: HeapPolicyInput = {}): string[] {
  const flags = heapPolicyFlags(o);
  if (flags.length) v8.setFlagsFromString(flags.join(' '));
  return flags;
}
