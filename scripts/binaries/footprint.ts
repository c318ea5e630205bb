// Measures a single binary at rest: RSS and CPU over N polls of an unchanged mailbox (real Dovecot + Mosquitto, 1 poll/s).
// Usage: node --import tsx scripts/binaries/footprint.ts [--target x64] [--polls 100] [--reference [--bundle F]] [--node-options OPTS] [--new-mail 1|0] [--env K=V ...]
//          [--marks 10,100,500,1000] [--heap-snapshot-at 100,1000 --snapshot-dir DIR]
//   --new-mail 0: the state is primed by a `once` first, so that no poll finds new mail (as the bench's daemon row);
//   default 1: the first poll alerts one mail (which loads the MIME header decoder; V8's compilers stay off for so few, see compiler-tiers.ts).
//   --reference: run `node bin/pop2mqtt.js` (this Node; --bundle F: `node F`) instead of the binary, for comparison; --node-options: NODE_OPTIONS for it.
//   --binary F: that file instead of dist/pop2mqtt-linux-<target> (an A/B comparison of two builds).
//   --marks: the polls after which RSS is printed (default 1, 10, half and last); sampled every 10 polls besides.
//   --heap-snapshot-at (with --reference): V8 heap snapshots after those polls (Node's --heapsnapshot-signal), written to --snapshot-dir.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDovecot } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { ROOT, binaryPath, cleanEnv, openTempDir, runnerFor, type Target } from '../../test/support/binaries.js';
import { dropPageCache } from './page-cache.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'x64' },
    polls: { type: 'string', default: '100' },
    reference: { type: 'boolean', default: false },
    'node-options': { type: 'string' },
    tls: { type: 'string', default: 'starttls' },
    'new-mail': { type: 'string', default: '1' },
    env: { type: 'string', multiple: true, default: [] },
    bundle: { type: 'string' },
    binary: { type: 'string' },
    marks: { type: 'string' },
    'heap-snapshot-at': { type: 'string' },
    'snapshot-dir': { type: 'string' },
  },
});
const target = values.target as Target;
const binary = values.binary ? path.resolve(values.binary) : binaryPath(target);
const polls = Number(values.polls);
if (!Number.isInteger(polls) || polls < 2) throw new Error('--polls must be an integer >= 2');
const tlsMode = values.tls!;
const newMail = values['new-mail'];
if (newMail !== '0' && newMail !== '1') throw new Error('--new-mail must be 0 or 1');
if (!['starttls', 'implicit', 'none'].includes(tlsMode)) throw new Error('--tls must be starttls, implicit or none');
const pollList = (v: string | undefined, name: string): number[] => {
  const xs = (v ?? '').split(',').filter(Boolean).map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1 || x > polls)) throw new Error(`${name} wants poll numbers between 1 and --polls`);
  return xs;
};
const printAt = values.marks ? pollList(values.marks, '--marks') : [1, 10, Math.floor(polls / 2), polls];
const snapshotAt = pollList(values['heap-snapshot-at'], '--heap-snapshot-at');
if (snapshotAt.length && (!values.reference || !values['snapshot-dir'])) throw new Error('--heap-snapshot-at needs --reference and --snapshot-dir');
if (values.bundle && !values.reference) throw new Error('--bundle needs --reference');

const TICKS = 100; // USER_HZ on Linux
function procStatus(pid: number): { rssKiB: number; hwmKiB: number; anonKiB: number; fileKiB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), anonKiB: kib('RssAnon'), fileKiB: kib('RssFile') };
}
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS; // utime + stime
}
/** Anonymous memory as /proc/PID/smaps_rollup counts it (exact; RssAnon in status is a batched counter). */
function smapsAnonKiB(pid: number): number {
  return Number(/^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
}
const mib = (kib: number) => (kib / 1024).toFixed(1);

const tmp = openTempDir(`p2m-footprint-${target}-`);
const [dovecot, broker] = await Promise.all([startDovecot({ users: [{ user: 'alice', pass: 'footprint-pw-1234' }] }), startMosquitto()]);
let child: ReturnType<typeof spawn> | undefined;
try {
  await dovecot.deliver('alice', 'From: cam@nvr.example\r\nSubject: Motion\r\nMessage-ID: <fp-1@nvr.example>\r\n\r\nbody\r\n');
  const stateDir = path.join(tmp, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  const ca = path.join(tmp, 'ca.pem');
  copyFileSync(dovecot.caFile, ca);
  chmodSync(ca, 0o644);
  const config = path.join(tmp, 'config.yaml');
  writeFileSync(config, [
    `state_dir: ${stateDir}`,
    'log_level: warn',
    'mqtt:',
    `  url: ${broker.url}`,
    'mailboxes:',
    '  - id: nvr',
    `    host: ${dovecot.host}`,
    `    port: ${tlsMode === 'implicit' ? dovecot.tlsPort : dovecot.port}`,
    `    tls: ${tlsMode}`,
    ...(tlsMode === 'none' ? ['    auth: scram-sha-256'] : [`    ca_file: ${ca}`, '    servername: localhost']),
    '    username: alice',
    '    password: ${MAIL_PASS}',
    '    schedule: "* * * * * *"',
    '    existing: process',
    'rules:',
    '  - name: motion',
    '    when: { subject: { contains: Motion } }',
    '',
  ].join('\n'), { mode: 0o600 });

  const argv = values.reference
    ? [process.execPath, values.bundle ? path.resolve(values.bundle) : path.join(ROOT, 'bin', 'pop2mqtt.js'), 'run', '--config', config]
    : [...runnerFor(target), binary, 'run', '--config', config];
  const extraEnv: Record<string, string> = { MAIL_PASS: 'footprint-pw-1234' };
  if (values['node-options']) extraEnv.NODE_OPTIONS = values['node-options'];
  const snapshotDir = values['snapshot-dir'] ? path.resolve(values['snapshot-dir']) : '';
  if (snapshotAt.length) {
    mkdirSync(snapshotDir, { recursive: true });
    extraEnv.NODE_OPTIONS = `${extraEnv.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}`.trim();
  }
  for (const kv of values.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--env wants K=V, got ${kv}`);
    extraEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  let before = 0;
  if (newMail === '0') {
    const once = spawnSync(argv[0]!, [...argv.slice(1, -3), 'once', '--config', config], { cwd: tmp, env: { ...cleanEnv(), ...extraEnv }, encoding: 'utf8', timeout: 120_000 });
    if (once.status !== 0) throw new Error(`priming once failed (${once.status})\n${once.stderr}`);
    before = (await dovecot.settled()).length;
  }
  if (!values.reference) dropPageCache(binary);
  const started = Date.now();
  child = spawn(argv[0]!, argv.slice(1), { cwd: tmp, env: { ...cleanEnv(), ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
  const pid = child.pid!;
  // One poll a second (the schedule); a loaded machine may skip a tick now and then.
  const limitMs = (polls * 1.25 + 30) * 1000 * (runnerFor(target).length ? 4 : 1);

  const samples: { poll: number; rssKiB: number; anonKiB: number; smapsAnonKiB: number; fileKiB: number; cpu: number; ms: number }[] = [];
  let cpuAfterFirst = 0;
  const marks = [...new Set([1, ...Array.from({ length: Math.floor(polls / 10) }, (_, i) => (i + 1) * 10), ...printAt, ...snapshotAt, polls])].sort((a, b) => a - b);
  for (const at of marks) {
    const remaining = limitMs - (Date.now() - started);
    if (remaining <= 0) throw new Error(`timed out before poll ${at}\n${stderr}`);
    await dovecot.logoutLines({ atLeast: before + at, timeoutMs: remaining });
    if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode})\n${stderr}`);
    const st = procStatus(pid);
    samples.push({ poll: at, rssKiB: st.rssKiB, anonKiB: st.anonKiB, smapsAnonKiB: smapsAnonKiB(pid), fileKiB: st.fileKiB, cpu: cpuSeconds(pid), ms: Date.now() - started });
    if (at === 1) cpuAfterFirst = cpuSeconds(pid);
    if (snapshotAt.includes(at)) {
      const count = () => readdirSync(snapshotDir).filter((f) => f.endsWith('.heapsnapshot')).length;
      const had = count();
      child.kill('SIGUSR2');
      const deadline = Date.now() + 60_000;
      while (count() === had && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      // Written when the file is complete: its size stops changing.
      let last = -1;
      for (;;) {
        const f = readdirSync(snapshotDir).filter((x) => x.endsWith('.heapsnapshot')).map((x) => path.join(snapshotDir, x));
        const size = f.reduce((a, x) => a + (existsSync(x) ? statSync(x).size : 0), 0);
        if (size === last || Date.now() > deadline) break;
        last = size;
        await new Promise((r) => setTimeout(r, 1000));
      }
      console.log(`  heap snapshot after poll ${at} in ${snapshotDir}`);
    }
  }
  const { hwmKiB, anonKiB, fileKiB } = procStatus(pid);
  const cpu = cpuSeconds(pid);
  const lines = (await dovecot.logoutLines()).slice(before);
  const idle = newMail === '0' ? lines : lines.slice(1);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

  const what = values.reference ? `node ${process.version} ${values.bundle ?? 'bin/pop2mqtt.js'}` : values.binary ?? `pop2mqtt-linux-${target}`;
  console.log(`${what}${values['node-options'] ? ` (NODE_OPTIONS=${values['node-options']})` : ''}${values.env?.length ? ` (${values.env.join(' ')})` : ''}, tls ${tlsMode}: ${lines.length} polls of an unchanged mailbox, 1 per second, ${newMail === '0' ? 'no new mail (state primed by a `once`)' : 'the first alerting one new mail'}${runnerFor(target).length ? ' (under qemu-user: RSS includes the emulator)' : ''}`);
  for (const s of samples.filter((x) => printAt.includes(x.poll))) {
    console.log(`  RSS after poll ${String(s.poll).padStart(4)}: ${mib(s.rssKiB)} MiB (${mib(s.anonKiB)} anonymous + ${mib(s.fileKiB)} file-backed; smaps_rollup Anonymous ${mib(s.smapsAnonKiB)} MiB) at ${(s.ms / 1000).toFixed(0)} s, CPU ${s.cpu.toFixed(2)} s`);
  }
  const every = polls > 200 ? 100 : 10;
  const series = samples.filter((x) => x.poll === 1 || x.poll % every === 0);
  console.log(`  RSS series (MiB, every ${every} polls): ${series.map((x) => mib(x.rssKiB)).join(' ')}`);
  console.log(`  anonymous series (smaps_rollup, MiB, every ${every} polls): ${series.map((x) => mib(x.smapsAnonKiB)).join(' ')}`);
  console.log(`  peak RSS (VmHWM):    ${mib(hwmKiB)} MiB; at the end ${mib(anonKiB)} MiB anonymous + ${mib(fileKiB)} MiB file-backed (mapped executable and libraries, reclaimable)`);
  console.log(`  CPU: ${cpu.toFixed(2)} s total, ${(((cpu - cpuAfterFirst) / Math.max(1, polls - 1)) * 1000).toFixed(1)} ms per idle poll`);
  console.log(`  POP3 bytes per idle poll after login: in ${avg(idle.map((l) => l.in)).toFixed(0)}, out ${avg(idle.map((l) => l.out)).toFixed(0)}; TOP ${idle.reduce((a, l) => a + l.top, 0)}, RETR ${idle.reduce((a, l) => a + l.retr, 0)} over ${idle.length} idle polls`);
} finally {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { child!.kill('SIGKILL'); resolve(); }, 10_000);
      child!.once('exit', () => { clearTimeout(t); resolve(); });
    });
  }
  await Promise.all([dovecot.stop(), broker.stop()]);
  rmSync(tmp, { recursive: true, force: true });
}
