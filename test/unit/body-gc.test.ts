// Proves body-gc.ts: a full collection only once downloaded messages' buffers add up to BODY_GARBAGE_BYTES, and none with the heap policy off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** In a fresh process (the module keeps state): allocates `mib` MiB of buffers and drops them, then reports what downloadReleased() did. */
function afterGarbage(mib: number[], env: NodeJS.ProcessEnv = {}): Array<{ collected: boolean; arrayBuffersMiB: number }> {
  const mod = fileURLToPath(new URL('../../src/body-gc.ts', import.meta.url));
  const script = `
    import { downloadReleased } from ${JSON.stringify(mod)};
    const out: Array<{ collected: boolean; arrayBuffersMiB: number }> = [];
    // allocated in a function of their own: no frame of the loop keeps them
    const garbage = (n: number) => { const bufs = Array.from({ length: n }, () => Buffer.alloc(1024 * 1024, 1)); return bufs.length; };
    for (const n of ${JSON.stringify(mib)}) {
      garbage(n);
      const collected = await downloadReleased({ execArgv: [] });
      out.push({ collected, arrayBuffersMiB: Math.round(process.memoryUsage().arrayBuffers / 1048576) });
    }
    process.stdout.write(JSON.stringify(out));
  `;
  // a module file, not -e: evaluated that way the dropped buffers stayed reachable
  const dir = mkdtempSync(path.join(os.tmpdir(), 'p2m-body-gc-'));
  try {
    writeFileSync(path.join(dir, 'probe.mts'), script);
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(dir, 'probe.mts')], {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      timeout: 60_000,
      encoding: 'utf8',
    });
    return JSON.parse(out) as Array<{ collected: boolean; arrayBuffersMiB: number }>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('downloaded messages: no collection for a few buffers, a full one once they add up to BODY_GARBAGE_BYTES, which frees them', { timeout: 120_000 }, () => {
  const r = afterGarbage([1, 0, 3, 1]);
  assert.deepEqual(r.map((x) => x.collected), [false, false, true, false]);
  // 4 MiB were allocated and dropped; V8 may still be sweeping some of them when gc() returns
  assert.ok(r[2]!.arrayBuffersMiB < 3, `after the collection ${r[2]!.arrayBuffersMiB} MiB of array buffers are left`);
});

test('POP2MQTT_HEAP_POLICY=off: never collects', { timeout: 120_000 }, () => {
  assert.deepEqual(afterGarbage([3, 3], { POP2MQTT_HEAP_POLICY: 'off' }).map((x) => x.collected), [false, false]);
});
