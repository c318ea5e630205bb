// Proves the start-up heap policy: which V8 flags it sets and when it stands back, and that V8 then really keeps the young generation small and collects garbage buffers sooner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { heapPolicyFlags } from '../../src/heap-policy.js';

const V20 = '11.3.244.8-node.38';

test('both flags by default on the measured V8 versions (Node 20 and 22)', () => {
  const all = ['--semi-space-growth-factor=1', '--heap-growing-percent=20'];
  assert.deepEqual(heapPolicyFlags({ env: {}, execArgv: [], v8Version: V20 }), all);
  assert.deepEqual(heapPolicyFlags({ env: {}, execArgv: [], v8Version: '12.4.254.21-node.33' }), all);
});

test('off by POP2MQTT_HEAP_POLICY=off, and on V8 versions it was not measured on', () => {
  assert.deepEqual(heapPolicyFlags({ env: { POP2MQTT_HEAP_POLICY: 'off' }, execArgv: [], v8Version: V20 }), []);
  assert.deepEqual(heapPolicyFlags({ env: { POP2MQTT_HEAP_POLICY: 'OFF' }, execArgv: [], v8Version: V20 }), []);
  assert.deepEqual(heapPolicyFlags({ env: {}, execArgv: [], v8Version: '13.6.233.10-node.18' }), []);
});

test('heap sizing the process was started with wins, flag by flag', () => {
  // The single binaries carry --max-semi-space-size=4 in their SEA execArgv.
  assert.deepEqual(heapPolicyFlags({ env: {}, execArgv: ['--max-semi-space-size=4'], v8Version: V20 }), ['--heap-growing-percent=20']);
  assert.deepEqual(heapPolicyFlags({ env: { NODE_OPTIONS: '--max-old-space-size=200' }, execArgv: [], v8Version: V20 }), ['--semi-space-growth-factor=1']);
  assert.deepEqual(heapPolicyFlags({ env: {}, execArgv: ['--semi_space_growth_factor=3', '--heap-growing-percent=50'], v8Version: V20 }), []);
});

/** Young-generation size (MB) when the policy is applied and after churning through objects and buffers, in a fresh process. */
function youngGenAfterChurn(policy: 'on' | 'off'): { atStartMB: number; newSpaceMB: number; flags: string[] } {
  const mod = fileURLToPath(new URL('../../src/heap-policy.ts', import.meta.url));
  const script = `
    import v8 from 'node:v8';
    import { applyHeapPolicy } from ${JSON.stringify(mod)};
    const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
    const atStartMB = young();
    const flags = applyHeapPolicy();
    let keep = [];
    for (let i = 0; i < 400000; i++) {
      keep.push({ i, s: 'x'.repeat(i % 50), b: Buffer.alloc(64) });
      if (keep.length > 20000) keep = [];
    }
    process.stdout.write(JSON.stringify({ atStartMB, newSpaceMB: young(), flags }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, POP2MQTT_HEAP_POLICY: policy, NODE_OPTIONS: '' },
    timeout: 30_000,
    encoding: 'utf8',
  });
  return JSON.parse(out) as { atStartMB: number; newSpaceMB: number; flags: string[] };
}

test('with the policy V8 keeps the young generation at the size it had at start; without it, it grows', { timeout: 60_000 }, () => {
  const on = youngGenAfterChurn('on');
  const off = youngGenAfterChurn('off');
  assert.deepEqual(off.flags, []);
  assert.equal(on.flags.length, 2);
  assert.ok(on.newSpaceMB <= on.atStartMB, `young generation with the policy: ${on.atStartMB} MB at start, ${on.newSpaceMB} MB after`);
  assert.ok(off.newSpaceMB >= 2 * off.atStartMB, `young generation without the policy: ${off.atStartMB} MB at start, ${off.newSpaceMB} MB after`);
});
