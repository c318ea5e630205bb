// Child of `npm run bench:hostile`: parses one hostile mail as the poller would (headers, then the streamed body) and evaluates each rule, reporting its own CPU time and peak RSS.
// Usage: node --expose-gc --import tsx scripts/bench/hostile-one.ts --root DIR --mail FILE  (prints one JSON line)
import { closeSync, createReadStream, existsSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { root: { type: 'string' }, mail: { type: 'string' } } });
const root = path.resolve(values.root!);
const file = values.mail!;

/** The rules a user could plausibly write for camera mail; each is timed on its own. */
export const HOSTILE_BENCH_RULES = [
  { name: 'subject-regex', when: { subject: { regex: '(?<camera>\\w+) motion' } }, publish: [] },
  { name: 'header-regex', when: { header: { name: 'X-Camera', regex: '(?<camera>\\w+) motion' } }, publish: [] },
  { name: 'to-regex', when: { to: { address: { regex: '^(?<camera>\\w+)@' } } }, publish: [] },
  { name: 'body-regex', when: { body: { regex: '(?<camera>\\w+) motion' } }, publish: [] },
  { name: 'body-contains', when: { body: { contains: 'motion detected' } }, publish: [] },
];

// the agent's own V8 heap sizing (src/cli/main.ts applies it at start), so that peak RSS is the agent's
const heapPolicy = path.join(root, 'src/heap-policy.ts');
if (existsSync(heapPolicy)) ((await import(heapPolicy)) as { applyHeapPolicy: () => string[] }).applyHeapPolicy();
type Mod = Record<string, any>; // the measured tree may be an older version: its modules are used untyped
const body: Mod = await import(path.join(root, 'src/message/body.ts'));
const headersMod: Mod = await import(path.join(root, 'src/message/headers.ts'));
const rules: Mod = await import(path.join(root, 'src/rules/index.ts'));
const NOW = new Date('2025-07-01T09:00:00Z');
const sets = HOSTILE_BENCH_RULES.map((r) => ({ name: r.name, rs: rules.compileRules([r], { trustedAuthservIds: [] }) }));
const cpuMs = (since: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
};

/** Evaluate every rule three times (a poll asks after each stage); the slowest single evaluation. */
function evaluateAll(data: Record<string, unknown>, slowest: { ms: number; rule: string }): void {
  for (const { name, rs } of sets) {
    for (let i = 0; i < 3; i++) {
      const t = process.cpuUsage();
      rs.evaluate(data, NOW);
      const ms = cpuMs(t);
      if (ms > slowest.ms) Object.assign(slowest, { ms, rule: name });
    }
  }
}

// warm up: load every lazy path once on a small mail, then settle the heap and take the idle RSS
const tiny = Buffer.from('From: a@b.c\r\nSubject: cam1 motion\r\nContent-Type: text/html\r\n\r\n<p>cam1 motion detected</p>\r\n');
const warm = await body.parseMessage(tiny);
evaluateAll({ mailbox: 'b', uid: 'w', msgNum: 1, size: tiny.length, headers: warm.headers, full: warm }, { ms: 0, rule: '' });
(globalThis as { gc?: () => void }).gc?.();
const idle = process.memoryUsage().rss;

const start = process.cpuUsage();
const slowest = { ms: 0, rule: '' };
// headers stage: what TOP n 0 returns (the header block, at most the 256 KiB limit plus a little)
const fd = openSync(file, 'r');
const head = Buffer.alloc(300 * 1024);
const got = readSync(fd, head, 0, head.length, 0);
closeSync(fd);
let headerError: string | undefined;
const data: Record<string, unknown> = { mailbox: 'b', uid: 'u', msgNum: 1, size: 0 };
try {
  const end = headersMod.findHeaderEnd(head.subarray(0, got));
  data.headers = headersMod.parseHeaders(head.subarray(0, end ? end.headerEnd : got));
  evaluateAll(data, slowest);
} catch (e) {
  headerError = (e as { code?: string }).code ?? (e as Error).message;
}
// full stage: RETR streamed into the parser in socket-sized pieces
const parseStart = process.cpuUsage();
const full = await body.parseMessage(createReadStream(file, { highWaterMark: 16 * 1024 }), { keepAttachment: () => false });
const parseMs = cpuMs(parseStart);
Object.assign(data, { full, headers: full.headers });
evaluateAll(data, slowest);
const totalMs = cpuMs(start);
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(JSON.stringify({
  cpuS: totalMs / 1000,
  parseCpuS: parseMs / 1000,
  peakOverIdleMiB: Math.max(0, peak - idle) / 1048576,
  slowestEvalMs: slowest.ms,
  slowestRule: slowest.rule,
  textChars: full.text.length,
  limits: full.limitsExceeded,
  ...(headerError ? { headerError } : {}),
}) + '\n');
