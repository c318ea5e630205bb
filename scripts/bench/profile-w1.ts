// Where W1's first-poll time goes: `pop2mqtt once` of 1,000 bench messages under --cpu-prof (from source, so files name the parts), self time by part, inside the poll.
// Usage: node --import tsx scripts/bench/profile-w1.ts [--messages N] [--keep DIR] [--plain N]   (--plain: N first polls of the bundle, no profiler, their duration_ms)
//        node --import tsx scripts/bench/profile-w1.ts --compare old.cjs,new.cjs [--plain N]   (N rounds of first polls of each bundle, alternated: duration_ms and process start → last alert, medians and best)
//        --env-of I=K=V (repeatable): variable K=V for the I-th (from 0) bundle of --compare only, e.g. `--compare b.cjs,b.cjs --env-of 1=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt`
//          (every run has the bench's measured environment, without NODE_* variables: scripts/bench/proc.ts measuredEnv)
//        --node-arg=X (repeatable) passes X to node for every bundle (e.g. --node-arg=--cpu-prof); add --trace to --compare: each process runs under start-trace.cjs; medians of its milestones (boot, modules, config, MQTT, POP3, alerts, exit), and the timeline of one run
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDovecot } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { subscribe } from '../../test/support/mqtt-subscriber.js';
import { corpus, kindAt } from './corpus.js';
import { timedRun } from './proc.js';
import { AgentHarness, headerRules } from './agent.js';
import { milestones, printMilestones, type Trace } from './start-timeline.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { messages: { type: 'string', default: '1000' }, keep: { type: 'string' }, plain: { type: 'string' }, compare: { type: 'string' }, trace: { type: 'boolean', default: false }, 'node-arg': { type: 'string', multiple: true, default: [] }, 'env-of': { type: 'string', multiple: true, default: [] }, strace: { type: 'boolean', default: false } } });
const MESSAGES = Number(values.messages);

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** The part of the program a frame belongs to. */
function partOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : `(native) ${fn}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm ${nm[1]}`;
  const src = /\/src\/(.+)$/.exec(url);
  if (src) return `src/${src[1]}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\/([^/]+).*/, 'node:internal/$1');
  return url.replace(/^file:\/\/.*\//, '');
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'p2m-prof-'));
  const [dovecot, mosquitto] = await Promise.all([startDovecot({ users: [{ user: 'bench', pass: 'prof-Pop3-pw-1' }] }), startMosquitto()]);
  try {
    for (const m of corpus(1, MESSAGES)) await dovecot.deliver('bench', m.raw);
    const harness = new AgentHarness({ bundle: '', dir: work, mqttUrl: mosquitto.url, pop3Port: dovecot.tlsPort, caFile: dovecot.caFile, user: 'bench', pass: 'prof-Pop3-pw-1' });
    if (values.compare) {
      await compare(harness, mosquitto.url, values.compare.split(','), Number(values.plain ?? 5));
      return;
    }
    if (values.plain) {
      spawnSync(process.execPath, [path.join(ROOT, 'scripts/build-bundle.mjs'), '--outfile', path.join(work, 'p.cjs')], { stdio: 'ignore' });
      const durations: number[] = [];
      for (let k = 0; k <= Number(values.plain); k++) {
        const cfg = await harness.writeConfig(`plain${k}`, { stateDir: `state-plain${k}`, rules: headerRules() });
        const trace = path.join(work, `strace${k}.txt`);
        const cmd = [path.join(work, 'p.cjs'), 'once', '--config', cfg];
        const r = values.strace && k > 0
          ? spawnSync('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync,rename,unlink,openat', '-o', trace, process.execPath, ...cmd], { env: harness.env, cwd: work, encoding: 'utf8', timeout: 300_000 })
          : spawnSync(process.execPath, cmd, { env: harness.env, cwd: work, encoding: 'utf8', timeout: 300_000 });
        if (r.status !== 0) throw new Error(`once exited ${r.status}\n${r.stderr}`);
        if (values.strace && k > 0) process.stdout.write(`run ${k} syscalls (strace -c):\n${(await readFile(trace, 'utf8')).split('\n').filter((l) => /fsync|rename|unlink|openat|total/.test(l)).join('\n')}\n`);
        if (k > 0) durations.push(Number(/duration_ms=(\d+)/.exec(r.stderr)?.[1])); // run 0 warms Dovecot's index
      }
      const sorted = [...durations].sort((a, b) => a - b);
      process.stdout.write(`first-poll duration_ms over ${durations.length} runs: ${durations.join(', ')} (median ${sorted[Math.floor(sorted.length / 2)]})\n`);
      return;
    }
    // Warm Dovecot's index with a first run, then profile a second first poll from fresh state.
    for (const name of ['warm', 'prof']) {
      const cfg = await harness.writeConfig(name, { stateDir: `state-${name}`, rules: headerRules() });
      const profDir = path.join(work, `cpu-${name}`);
      const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200', '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'once', '--config', cfg], { env: harness.env, cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
      if (r.status !== 0) throw new Error(`once exited ${r.status}\n${r.stderr}`);
      if (name === 'warm') continue;
      const pollLine = r.stderr.split('\n').find((l) => / poll .*duration_ms=/.test(l)) ?? '';
      const file = path.join(profDir, (await readdir(profDir))[0]!);
      const prof = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
      report(prof, pollLine);
      if (values.keep) spawnSync('cp', [file, values.keep]);
    }
  } finally {
    await mosquitto.stop();
    await dovecot.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Alternate first polls of several bundles (one warm-up run each first): in-agent duration_ms and process start → last alert. */
async function compare(harness: AgentHarness, mqttUrl: string, bundles: string[], rounds: number): Promise<void> {
  const alerts = Array.from({ length: MESSAGES }, (_, i) => kindAt(1, i)).filter((k) => k === 'alarm' || k === 'alarm-snapshot').length;
  const sub = await subscribe(mqttUrl, ['pop2mqtt/alerts/#']);
  const got = bundles.map(() => ({ poll: [] as number[], ackWait: [] as number[], last: [] as number[], cpu: [] as number[], traces: [] as Array<Map<string, number>> }));
  const tracer = path.join(ROOT, 'scripts/bench/start-trace.cjs');
  const envOf = bundles.map(() => ({}) as Record<string, string>);
  for (const spec of values['env-of']!) {
    const m = /^(\d+)=([^=]+)=(.*)$/.exec(spec);
    if (!m || !envOf[Number(m[1])]) throw new Error(`--env-of wants I=K=V with I a bundle index of --compare, got ${spec}`);
    envOf[Number(m[1])]![m[2]!] = m[3]!;
  }
  const label = (b: number) => `${bundles[b]}${Object.keys(envOf[b]!).length ? ` (${Object.entries(envOf[b]!).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`;
  try {
    let n = 0;
    for (let k = 0; k <= rounds; k++) {
      for (const [b, bundle] of bundles.entries()) {
        const cfg = await harness.writeConfig(`cmp${n}`, { stateDir: `state-cmp${n++}`, rules: headerRules() });
        sub.clear();
        const traceFile = `${cfg}.trace.json`;
        const nodeArgs = [...(values.trace ? ['-r', tracer] : []), ...values['node-arg']!];
        const env = { ...harness.env, ...envOf[b], ...(values.trace ? { P2M_START_TRACE: traceFile } : {}) };
        const r = await timedRun(process.execPath, [...nodeArgs, path.resolve(bundle), 'once', '--config', cfg], { env, timeoutMs: 300_000 });
        if (r.code !== 0) throw new Error(`${bundle}: once exited ${r.code}\n${r.stderr}`);
        const msgs = await sub.waitForCount(alerts, 60_000);
        if (msgs.length !== alerts) throw new Error(`${bundle}: ${msgs.length} alerts, expected ${alerts}`);
        if (k === 0) continue; // the first round warms Dovecot's index and the page cache
        got[b]!.poll.push(Number(/duration_ms=(\d+)/.exec(r.stderr)?.[1]));
        got[b]!.ackWait.push(Number(/ack_wait_ms=(\d+)/.exec(r.stderr)?.[1] ?? 0));
        got[b]!.last.push(Math.max(...msgs.map((m) => m.receivedAt)) - r.startedAt);
        got[b]!.cpu.push(r.cpuMs);
        if (values.trace) {
          const trace = JSON.parse(await readFile(traceFile, 'utf8')) as Trace;
          const m = milestones(trace, msgs.map((x) => x.receivedAt), r.endedAt);
          got[b]!.traces.push(m);
          if (values.keep) spawnSync('cp', [traceFile, values.keep]);
          if (k === 1) printMilestones(bundle, trace, m);
        }
      }
    }
  } finally {
    await sub.close();
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  process.stdout.write(`| bundle | poll duration_ms median (best) | ack_wait_ms median | start → last alert ms median (best) | CPU ms median | runs |\n|---|---:|---:|---:|---:|---:|\n`);
  for (const b of bundles.keys()) {
    const g = got[b]!;
    process.stdout.write(`| ${label(b)} | ${med(g.poll)} (${Math.min(...g.poll)}) | ${med(g.ackWait)} | ${med(g.last)} (${Math.min(...g.last)}) | ${med(g.cpu)} | ${g.poll.length} |\n`);
    process.stdout.write(`<!-- ${label(b)}: poll ${g.poll.join(' ')}; last alert ${g.last.join(' ')} -->\n`);
  }
  if (values.trace) {
    const names = [...new Set(got.flatMap((g) => g.traces.flatMap((m) => [...m.keys()])))];
    process.stdout.write(`\n| ms since process start, median | ${bundles.join(' | ')} |\n|---|${bundles.map(() => '---:').join('|')}|\n`);
    for (const n of names) {
      const cell = (g: (typeof got)[number]) => { const v = g.traces.map((m) => m.get(n)).filter((x): x is number => x !== undefined); return v.length ? med(v).toFixed(0) : '–'; };
      process.stdout.write(`| ${n} | ${got.map(cell).join(' | ')} |\n`);
    }
  }
}

function report(prof: CpuProfile, pollLine: string): void {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id: number): ProfileNode[] => {
    const out: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) out.push(byId.get(cur)!);
    return out;
  };
  // The poll window: from the first sample inside pollMailbox() (its synchronous start) to the last sample with
  // src/mailbox/poll.ts or src/pop3/ on the stack (module evaluation at start-up comes before, so it is left out).
  let t = prof.startTime;
  const times = prof.samples.map((_, i) => (t += prof.timeDeltas[i]!));
  const inPoll = prof.samples.map((id) => stack(id).some((n) => /\/src\/(mailbox\/poll|pop3\/)/.test(n.callFrame.url)));
  const first = prof.samples.findIndex((id) => stack(id).some((n) => n.callFrame.functionName === 'pollMailbox'));
  const last = inPoll.lastIndexOf(true);
  const self = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (let i = first; i <= last; i++) {
    const dt = (times[i + 1] ?? times[i]!) - times[i]!;
    const leaf = byId.get(prof.samples[i]!)!;
    const part = partOf(leaf.callFrame.url, leaf.callFrame.functionName);
    self.set(part, (self.get(part) ?? 0) + dt);
    const fn = `${leaf.callFrame.functionName || '(anonymous)'} ${part}:${leaf.callFrame.lineNumber + 1}`;
    fns.set(fn, (fns.get(fn) ?? 0) + dt);
    total += dt;
  }
  const ms = (us: number) => (us / 1000).toFixed(1);
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  process.stdout.write(`poll line: ${pollLine.trim()}\nprofiled poll window: ${ms(total)} ms (pollMailbox() entered → last sample with poll.ts/pop3 on the stack)\n\n| part (self time) | ms | % |\n|---|---:|---:|\n`);
  for (const [k, v] of top(self, 25)) process.stdout.write(`| ${k} | ${ms(v)} | ${(v / total * 100).toFixed(1)} |\n`);
  process.stdout.write(`\n| function (self time) | ms |\n|---|---:|\n`);
  for (const [k, v] of top(fns, 30)) process.stdout.write(`| ${k} | ${ms(v)} |\n`);
}

main().then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`profile failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
