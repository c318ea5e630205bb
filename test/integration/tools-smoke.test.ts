// The bench and the soak are tools, not tests, but they must keep running from a checkout: a short run of each (real Dovecot and Mosquitto), checking they finish and report, never the figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runNode } from '../support/lab.js';

const tsx = (args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) => runNode(['--import', 'tsx', ...args], { env: { ...process.env, ...env }, timeoutMs });

// W6 alone waits for four of its 30 s schedule rounds, so the bound leaves room for a loaded CI machine.
test('npm run bench (scaled down, no fetchmail) runs from the checkout and writes its table and JSON', { timeout: 330_000 }, async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'p2m-bench-smoke-'));
  try {
    const r = await tsx(['scripts/bench/main.ts', '--skip-fetchmail', '--messages', '40', '--soak-polls', '12', '--w6-mailboxes', '4', '--w1-runs', '1', '--w4-messages', '20', '--out', out], {}, 320_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\| Workload \| Metric \|/m);
    const files = (await readdir(out)).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    const j = JSON.parse(await readFile(path.join(out, files[0]!), 'utf8')) as { rows: Array<{ workload: string; pop2mqtt: unknown }>; workloads: Record<string, unknown> };
    assert.deepEqual(Object.keys(j.workloads).sort(), ['footprint', 'w1', 'w2', 'w3', 'w4', 'w4OneShot', 'w5', 'w6']);
    for (const w of ['W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'Footprint']) {
      const rows = j.rows.filter((row) => row.workload.startsWith(w));
      assert.ok(rows.length > 0, `rows for ${w}`);
      assert.ok(rows.every((row) => typeof row.pop2mqtt === 'number' && Number.isFinite(row.pop2mqtt)), `${w}: every pop2mqtt figure is a number`);
    }
    assert.equal(j.rows.filter((row) => row.workload.startsWith('W4, 20 messages')).length, 2, 'the one-shot W4 rows of memory-w4.ts');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('npm run soak (scaled down) runs the bundled agent through its polls and reports memory, fds and alerts', { timeout: 180_000 }, async () => {
  const r = await tsx(['scripts/soak.ts', '--polls', '60'], { SOAK_WARMUP: '10', SOAK_SAMPLE_EVERY: '10', MALLOC_ARENA_MAX: '1' }, 170_000);
  assert.match(r.stdout, /soak: 60 polls in \d+ s .*failed polls 0/, r.stdout + r.stderr);
  assert.match(r.stdout, /soak: RSS [\d.]+ MB after 10 polls -> [\d.]+ MB at the end/);
  assert.match(r.stdout, /soak: open fds \d+\.\.\d+ after warm-up/);
  assert.match(r.stdout, /distinct alerts received \(>= \d+ expected\) OK/);
});
