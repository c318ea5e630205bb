// The bench and the soak are tools, not tests, but they must keep running from a checkout: a short run of each (real Dovecot and Mosquitto), checking they finish and report, never the figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/lab.js';

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} timed out\n${out}\n${err}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

test('npm run bench (scaled down, no fetchmail) runs from the checkout and writes its table and JSON', { timeout: 180_000 }, async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'p2m-bench-smoke-'));
  try {
    const r = await run(['scripts/bench/main.ts', '--skip-fetchmail', '--messages', '40', '--soak-polls', '12', '--out', out], {}, 170_000);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^\| Workload \| Metric \|/m);
    const files = (await readdir(out)).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    const j = JSON.parse(await readFile(path.join(out, files[0]!), 'utf8')) as { rows: Array<{ workload: string; pop2mqtt: unknown }>; workloads: Record<string, unknown> };
    assert.deepEqual(Object.keys(j.workloads).sort(), ['w1', 'w2', 'w3', 'w4', 'w5']);
    for (const w of ['W1', 'W2', 'W3', 'W4', 'W5']) {
      const rows = j.rows.filter((row) => row.workload.startsWith(w));
      assert.ok(rows.length > 0, `rows for ${w}`);
      assert.ok(rows.every((row) => typeof row.pop2mqtt === 'number' && Number.isFinite(row.pop2mqtt)), `${w}: every pop2mqtt figure is a number`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('npm run soak (scaled down) runs the bundled agent through its polls and reports memory, fds and alerts', { timeout: 180_000 }, async () => {
  const r = await run(['scripts/soak.ts', '--polls', '60'], { SOAK_WARMUP: '10', SOAK_SAMPLE_EVERY: '10', MALLOC_ARENA_MAX: '1' }, 170_000);
  assert.match(r.out, /soak: 60 polls in \d+ s .*failed polls 0/, r.out + r.err);
  assert.match(r.out, /soak: RSS [\d.]+ MB after 10 polls -> [\d.]+ MB at the end/);
  assert.match(r.out, /soak: open fds \d+\.\.\d+ after warm-up/);
  assert.match(r.out, /distinct alerts received \(>= \d+ expected\) OK/);
});
