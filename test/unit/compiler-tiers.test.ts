// Proves the deferred compiler tiers: which V8 flags are held back and when the policy stands back, and that V8 then really optimizes nothing until enableOptimizingCompilers().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deferredCompilerFlags, OPTIMIZE_AT, TIER_UP_AT } from '../../src/compiler-tiers.js';

const V20 = '11.3.244.8-node.38';
const V22 = '12.4.254.21-node.57';
const BOTH = [
  ['--no-turbofan', '--turbofan'],
  ['--no-sparkplug', '--sparkplug'],
];

test('TurboFan and Sparkplug held back by default on the measured V8 versions; Sparkplug only where it is on by default', () => {
  assert.deepEqual(deferredCompilerFlags({ env: {}, execArgv: [], v8Version: V20, arch: 'x64' }), BOTH);
  assert.deepEqual(deferredCompilerFlags({ env: {}, execArgv: [], v8Version: V22, arch: 'arm64' }), BOTH);
  assert.deepEqual(deferredCompilerFlags({ env: {}, execArgv: [], v8Version: V22, arch: 'arm' }), [BOTH[0]]);
});

test('off by POP2MQTT_HEAP_POLICY=off, and on V8 versions it was not measured on', () => {
  assert.deepEqual(deferredCompilerFlags({ env: { POP2MQTT_HEAP_POLICY: 'off' }, execArgv: [], v8Version: V20, arch: 'x64' }), []);
  assert.deepEqual(deferredCompilerFlags({ env: {}, execArgv: [], v8Version: '13.6.233.10-node.18', arch: 'x64' }), []);
});

test('a compiler flag the process was started with wins, however it is spelt; other flags do not count', () => {
  const f = (execArgv: string[], NODE_OPTIONS = '') => deferredCompilerFlags({ env: { NODE_OPTIONS }, execArgv, v8Version: V20, arch: 'x64' });
  assert.deepEqual(f(['--no-opt']), [BOTH[1]]);
  assert.deepEqual(f(['--turbofan']), [BOTH[1]]);
  assert.deepEqual(f(['--max_opt=2']), [BOTH[1]]);
  assert.deepEqual(f([], '--no-sparkplug'), [BOTH[0]]);
  assert.deepEqual(f(['--lite-mode']), []);
  assert.deepEqual(f([], '--jitless'), []);
  assert.deepEqual(f(['--optimize-for-size', '--max-semi-space-size=4']), BOTH);
  // Maglev is not one of the deferred tiers (compiled out of the measured Node builds, next test): a user's Maglev flag
  // is left as given and does not stand the policy back for the others
  assert.deepEqual(f(['--maglev']), BOTH);
  assert.deepEqual(f(['--no_maglev']), BOTH);
});

test('no Maglev flag is ever set: not on x64 or arm64 of either measured V8', () => {
  for (const v8Version of [V20, V22]) {
    for (const arch of ['x64', 'arm64', 'arm']) {
      const flags = deferredCompilerFlags({ env: {}, execArgv: [], v8Version, arch }).flat();
      assert.ok(!flags.some((f) => f.includes('maglev')), `${v8Version} ${arch}: ${flags.join(' ')}`);
    }
  }
});

/** Runs a hot function under --trace-opt with `args` in a fresh process of this Node; returns the tiers V8 compiled it with. */
function tiersUsed(args: string[], atRunTime = ''): string[] {
  const script = `
    ${atRunTime ? `require('node:v8').setFlagsFromString(${JSON.stringify(atRunTime)});` : ''}
    function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * 7) % 13; return s; }
    for (let k = 0; k < 3000; k++) hot(1000);
  `;
  const out = execFileSync(process.execPath, ['--trace-opt', ...args, '-e', script], { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000, encoding: 'utf8' });
  return [...new Set([...out.matchAll(/completed (?:compiling|optimizing) [^<]*<JSFunction hot\b[^>]*> \(target (\w+)\)/g)].map((m) => m[1]!))].sort();
}

test('Maglev is compiled out of this Node: --maglev, given at start or set at run time, compiles nothing (why compiler-tiers.ts leaves it alone)', { timeout: 120_000 }, () => {
  // Official Node 20 and 22 builds (the binaries' base 22.23.3 included) are configured without it; a build with
  // Maglev would need it measured and deferred like the other tiers (docs/bench.md, "Node 22 / Maglev").
  assert.equal((process.config.variables as Record<string, unknown>).v8_enable_maglev, 0);
  assert.deepEqual(tiersUsed([]), ['TURBOFAN']); // the trace sees what V8 compiles
  assert.deepEqual(tiersUsed(['--maglev', '--no-turbofan']), []);
  assert.deepEqual(tiersUsed(['--no-turbofan'], '--maglev'), []);
});

/** Runs a hot function under --trace-opt in a fresh process: deferred, then (optionally) enabled; returns what V8 optimized. */
function optimizedFunctions(enable: boolean, policy = 'on'): string[] {
  const mod = fileURLToPath(new URL('../../src/compiler-tiers.ts', import.meta.url));
  const script = `
    import { deferOptimizingCompilers, enableOptimizingCompilers } from ${JSON.stringify(mod)};
    deferOptimizingCompilers();
    function idleWork(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * 7) % 13; return s; }
    for (let k = 0; k < 300; k++) idleWork(10000);
    ${enable ? 'enableOptimizingCompilers();' : ''}
    function realWork(n) { let s = 0; for (let i = 0; i < n; i++) s += (i * 5) % 11; return s; }
    for (let k = 0; k < 300; k++) realWork(10000);
  `;
  const out = execFileSync(process.execPath, ['--trace-opt', '--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, POP2MQTT_HEAP_POLICY: policy, NODE_OPTIONS: '' },
    timeout: 60_000,
    encoding: 'utf8',
  });
  return [...new Set([...out.matchAll(/completed optimizing [^<]*<JSFunction (idleWork|realWork)\b/g)].map((m) => m[1]!))].sort();
}

test('V8 optimizes nothing while deferred, and tiers up as usual once enabled', { timeout: 120_000 }, () => {
  assert.deepEqual(optimizedFunctions(false), []);
  assert.deepEqual(optimizedFunctions(true), ['realWork']);
  assert.deepEqual(optimizedFunctions(false, 'off'), ['idleWork', 'realWork']);
});

/** In a fresh process (the counter is per process): defers, then reports polls of `counts` new messages; returns what each call set. */
function tierUpsFor(counts: number[], arch = 'x64'): string[][] {
  const mod = fileURLToPath(new URL('../../src/compiler-tiers.ts', import.meta.url));
  const script = `
    import { deferOptimizingCompilers, newMessagesSeen } from ${JSON.stringify(mod)};
    deferOptimizingCompilers({ env: {}, execArgv: [], arch: ${JSON.stringify(arch)} });
    process.stdout.write(JSON.stringify(${JSON.stringify(counts)}.map((n) => newMessagesSeen(n))));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
    encoding: 'utf8',
  });
  return JSON.parse(out) as string[][];
}

test('a few new messages leave the compilers off; Sparkplug at TIER_UP_AT (a poll of 20, or 500 in all), TurboFan at OPTIMIZE_AT (5,000 in a poll or in all), each once', { timeout: 120_000 }, () => {
  assert.deepEqual(TIER_UP_AT, { poll: 20, total: 500 });
  assert.deepEqual(OPTIMIZE_AT, { poll: 5000, total: 5000 });
  const baseline = ['--sparkplug'];
  assert.deepEqual(tierUpsFor([1, 19, 19, 20, 25, 1000]), [[], [], [], baseline, [], []]);
  assert.deepEqual(tierUpsFor([...Array.from({ length: 49 }, () => 10), 9, 1, 1]), [...Array.from({ length: 50 }, () => []), baseline, []]);
  // a first poll of a very full mailbox turns both on at once
  assert.deepEqual(tierUpsFor([5000, 1]), [['--turbofan', '--sparkplug'], []]);
  // a busy mailbox: TurboFan once 5,000 new messages have been seen
  assert.deepEqual(tierUpsFor([20, ...Array.from({ length: 9 }, () => 500), 479, 1, 1]), [baseline, ...Array.from({ length: 10 }, () => []), ['--turbofan'], []]);
  // without Sparkplug (32-bit ARM) TurboFan is the only compiler and keeps the baseline's threshold
  assert.deepEqual(tierUpsFor([19, 20], 'arm'), [[], ['--turbofan']]);
});
