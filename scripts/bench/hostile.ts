// `npm run bench:hostile`: CPU time, peak RSS and the slowest rule evaluation for each hostile mail of issue 13 point 3, one child process per mail.
// Usage: node --import tsx scripts/bench/hostile.ts [--root DIR (source tree to measure, default this one)] [--only NAME] [--timeout SECONDS] [--json FILE]
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuHostileMails } from '../../test/fixtures/mail/generate-hostile.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    root: { type: 'string', default: ROOT },
    only: { type: 'string' },
    timeout: { type: 'string', default: '300' },
    json: { type: 'string' },
  },
});
const timeoutMs = Number(values.timeout) * 1000;
if (!(timeoutMs > 0)) throw new Error('--timeout must be a number of seconds > 0');

interface Result { cpuS: number; parseCpuS: number; peakOverIdleMiB: number; slowestEvalMs: number; slowestRule: string; textChars: number; limits: string[]; headerError?: string }

/** Run the measuring child on one mail file; its JSON line, or why there is none. Bounded by --timeout. */
function measure(file: string): Promise<Result | string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(ROOT, 'scripts/bench/hostile-one.ts'), '--root', values.root!, '--mail', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') return resolve(`killed after ${values.timeout} s`);
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Result);
      } catch {
        resolve(`exit ${code}: ${err.trim().split('\n').slice(-3).join(' ').slice(0, 200)}`);
      }
    });
  });
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-bench-hostile-'));
const rows: { name: string; bytes: number; r: Result | string }[] = [];
try {
  for (const m of cpuHostileMails()) {
    if (values.only && m.name !== values.only) continue;
    const file = path.join(dir, `${m.name}.eml`);
    await writeFile(file, m.raw);
    process.stderr.write(`[bench:hostile] ${m.name} (${m.raw.length} B)…\n`);
    rows.push({ name: m.name, bytes: m.raw.length, r: await measure(file) });
    await rm(file);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const lines = [
  `Source tree: ${values.root}  (node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)})`,
  '',
  '| mail | size | CPU s | parse CPU s | peak RSS over idle MiB | slowest rule evaluation ms (rule) | text chars | limits |',
  '|---|---:|---:|---:|---:|---:|---:|---|',
  ...rows.map(({ name, bytes, r }) => typeof r === 'string'
    ? `| ${name} | ${bytes} | ${r} | | | | | |`
    : `| ${name} | ${bytes} | ${r.cpuS.toFixed(2)} | ${r.parseCpuS.toFixed(2)} | ${r.peakOverIdleMiB.toFixed(1)} | ${r.slowestEvalMs.toFixed(1)} (${r.slowestRule}) | ${r.textChars} | ${[...r.limits, ...(r.headerError ? [`headers: ${r.headerError}`] : [])].join(', ')} |`),
];
process.stdout.write(lines.join('\n') + '\n');
if (values.json) await writeFile(values.json, JSON.stringify(rows, null, 2) + '\n');
