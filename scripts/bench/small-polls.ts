// CPU and memory of a daemon's small polls (a few new messages, header rules) with V8's compilers as compiler-tiers.ts leaves them (off below TIER_UP_AT) against both on from the start: the figures behind TIER_UP_AT.
// Usage: node --import tsx scripts/bench/small-polls.ts [--sizes 5,19] [--rounds 8] [--bundle FILE]
//
// Two daemons (`node <bundle> run`, 1 s schedule, header rules, Dovecot's POP3S port), one mailbox each, side by side:
// "tiers deferred" as shipped, and "tiers on" started with --turbofan --sparkplug (a compiler flag given at start
// wins over compiler-tiers.ts; the heap policy is the same). Each round delivers N bench-corpus messages to each
// daemon's mailbox in turn (order alternated), right after one of its polls, and measures the process's CPU time (all
// threads: TurboFan compiles on background threads) from that poll's logout to the logout of the poll after the one
// that found the mail (the mail's poll, its acks and one idle poll), and the same window with no mail (idle baseline).
// Printed: medians per variant and size, the new-mail poll's cost over the idle baseline, and each daemon's VmHWM,
// VmRSS, anonymous and file-backed RSS at the end. Fewer than TIER_UP_AT.total messages per daemon (checked).
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDovecot } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { TIER_UP_AT } from '../../src/compiler-tiers.js';
import { AgentHarness, headerRules } from './agent.js';
import { corpusMessage } from './corpus.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { sizes: { type: 'string', default: '5,19' }, rounds: { type: 'string', default: '8' }, bundle: { type: 'string' } } });
const SIZES = values.sizes!.split(',').map(Number);
const ROUNDS = Number(values.rounds);
if (SIZES.some((n) => !Number.isInteger(n) || n < 0) || !Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('--sizes wants integers >= 0, --rounds an integer >= 1');
if (SIZES.reduce((a, n) => a + n, 0) * ROUNDS >= TIER_UP_AT.total) throw new Error(`sizes x rounds must stay below TIER_UP_AT.total (${TIER_UP_AT.total})`);
if (SIZES.some((n) => n >= TIER_UP_AT.poll)) console.error(`note: a size >= ${TIER_UP_AT.poll} tiers the deferred daemon up at its first such poll`);

/** CPU time of every thread of a process so far, ns (schedstat: nanosecond resolution, unlike /proc/PID/stat's ticks). */
async function cpuNs(pid: number): Promise<number> {
  let sum = 0;
  for (const t of await readdir(`/proc/${pid}/task`)) {
    const s = await readFile(`/proc/${pid}/task/${t}/schedstat`, 'utf8').catch(() => '0');
    sum += Number(s.split(' ')[0]);
  }
  return sum;
}
async function status(pid: number): Promise<Record<string, number>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { hwm: kib('VmHWM'), rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') };
}
const med = (v: number[]) => (v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]! : NaN);
const mib = (kib: number) => (kib / 1024).toFixed(1);

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'p2m-small-polls-'));
  let bundle = values.bundle ? path.resolve(values.bundle) : '';
  if (!bundle) {
    bundle = path.join(work, 'pop2mqtt.cjs');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-bundle.mjs'), '--outfile', bundle], { stdio: 'inherit' });
  }
  const variants = [
    { name: 'tiers deferred (as shipped)', user: 'deferred', nodeArgs: [] as string[] },
    { name: 'tiers on from the start (--turbofan --sparkplug)', user: 'tiered', nodeArgs: ['--turbofan', '--sparkplug'] },
  ];
  const PASS = 'small-Polls-pw-1';
  const [dovecot, mosquitto] = await Promise.all([startDovecot({ users: variants.map((v) => ({ user: v.user, pass: PASS })) }), startMosquitto()]);
  const children: ChildProcess[] = [];
  try {
    interface Daemon { name: string; user: string; child: ChildProcess; pid: number; stderr: () => string; poll: Map<number, number[]>; idle: number[] }
    const daemons: Daemon[] = [];
    for (const v of variants) {
      const harness = new AgentHarness({ bundle, dir: work, mqttUrl: mosquitto.url, pop3Port: dovecot.tlsPort, caFile: dovecot.caFile, user: v.user, pass: PASS });
      const cfg = await harness.writeConfig(v.user, { stateDir: `state-${v.user}`, rules: headerRules(), logLevel: 'warn' });
      const child = spawn(process.execPath, [...v.nodeArgs, bundle, 'run', '--config', cfg], { env: harness.env, cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
      children.push(child);
      daemons.push({ name: v.name, user: v.user, child, pid: child.pid!, stderr: () => stderr, poll: new Map<number, number[]>(), idle: [] as number[] });
    }
    /** Logout lines of this daemon's user so far. */
    const logouts = async (user: string, atLeast: number) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const mine = (await dovecot.logoutLines({ timeoutMs: 30_000 })).filter((l) => l.user === user);
        if (mine.length >= atLeast) return mine;
        if (Date.now() > deadline) throw new Error(`no poll of ${user} within 30 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    for (const d of daemons) await logouts(d.user, 5); // started, a few idle polls
    let index = 0;
    const window = async (d: Daemon, n: number): Promise<number | undefined> => {
      // Start right after a fresh poll of this daemon, so that the mail is in place well before its next tick.
      const base = (await logouts(d.user, (await logouts(d.user, 0)).length + 1)).length;
      const t0 = await cpuNs(d.pid);
      for (let i = 0; i < n; i++) await dovecot.deliver(d.user, corpusMessage(7, index++).raw);
      const after = await logouts(d.user, base + 2);
      const t1 = await cpuNs(d.pid);
      if (d.child.exitCode !== null) throw new Error(`${d.name} exited\n${d.stderr()}`);
      // The mail must have been found by one poll (a delivery can straddle a tick: then the sample is not used).
      const found = after.slice(base, base + 2).map((l) => l.top);
      if (n > 0 && !(found[0] === n && found[1] === 0)) return undefined;
      return (t1 - t0) / 1e6;
    };
    for (let r = 0; r < ROUNDS; r++) {
      for (const n of [0, ...SIZES]) {
        for (const d of r % 2 ? [...daemons].reverse() : daemons) {
          const ms = await window(d, n);
          if (ms === undefined) continue;
          if (n === 0) d.idle.push(ms);
          else d.poll.set(n, [...(d.poll.get(n) ?? []), ms]);
        }
      }
    }
    console.log(`small polls, header rules, Node ${process.version}, ${ROUNDS} rounds alternated; CPU ms of all threads from a poll's logout to the logout after the next (the new mail's poll, its acks and one idle poll), medians (runs)`);
    console.log(`| variant | idle window | ${SIZES.map((n) => `${n} new: window | over idle`).join(' | ')} | VmHWM | VmRSS (anon + file) at the end |`);
    console.log(`|---|---:|${SIZES.map(() => '---:|---:').join('|')}|---:|---:|`);
    for (const d of daemons) {
      const st = await status(d.pid);
      const idle = med(d.idle);
      const cells = SIZES.map((n) => { const v = d.poll.get(n) ?? []; return `${med(v).toFixed(1)} (${v.length}) | +${(med(v) - idle).toFixed(1)}`; });
      console.log(`| ${d.name} | ${idle.toFixed(1)} (${d.idle.length}) | ${cells.join(' | ')} | ${mib(st.hwm!)} MiB | ${mib(st.rss!)} (${mib(st.anon!)} + ${mib(st.file!)}) MiB |`);
      console.log(`<!-- ${d.name}: idle ${d.idle.map((x) => x.toFixed(1)).join(' ')}; ${SIZES.map((n) => `${n}: ${(d.poll.get(n) ?? []).map((x) => x.toFixed(1)).join(' ')}`).join('; ')} -->`);
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await Promise.all([dovecot.stop(), mosquitto.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
