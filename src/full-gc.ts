// V8's full garbage collection for a process started without --expose-gc: one gc function, taken once from a new context made while the flag is set for a moment (about 0.4 MiB, only when first needed).
import v8 from 'node:v8';

let gcFn: (() => void) | undefined;

/** The gc() the user exposed, else one from a context created with --expose-gc; the same function every call. Throws if this V8 refuses the flag. */
export async function fullGcFunction(): Promise<() => void> {
  if (gcFn) return gcFn;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return (gcFn = exposed);
  const vm = await import('node:vm'); // loaded at the first collection only: an idle `once` never needs it
  v8.setFlagsFromString('--expose-gc');
  try {
    gcFn = vm.runInNewContext('gc') as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  if (typeof gcFn !== 'function') throw new Error('no gc() in a context made with --expose-gc');
  return gcFn;
}
