// Measures a single binary at rest: RSS and CPU over N polls of an unchanged mailbox (real Dovecot + Mosquitto, 1 poll/s).
// Usage: node --import tsx scripts/binaries/footprint.ts [--target x64] [--polls 100]   (see scripts/binaries/footprint.sh)
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDovecot } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { binaryPath, cleanEnv, openTempDir, runnerFor, type Target } from '../../test/binaries/support.js';

const { values } = parseArgs({ options: { target: { type: 'string', default: 'x64' }, polls: { type: 'string', default: '100' } } });
const target = values.target as Target;
const polls = Number(values.polls);
if (!Number.isInteger(polls) || polls < 2) throw new Error('--polls must be an integer >= 2');

const TICKS = 100; // USER_HZ on Linux
function procStatus(pid: number): { rssKiB: number; hwmKiB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS; // utime + stime
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
    `    port: ${dovecot.port}`,
    '    tls: starttls',
    `    ca_file: ${ca}`,
    '    servername: localhost',
    '    username: alice',
    '    password: ${MAIL_PASS}',
    '    schedule: "* * * * * *"',
    '    existing: process',
    'rules:',
    '  - name: motion',
    '    when: { subject: { contains: Motion } }',
    '',
  ].join('\n'), { mode: 0o600 });

  const argv = [...runnerFor(target), binaryPath(target), 'run', '--config', config];
  const started = Date.now();
  child = spawn(argv[0]!, argv.slice(1), { cwd: tmp, env: cleanEnv({ MAIL_PASS: 'footprint-pw-1234' }), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
  const pid = child.pid!;
  const limitMs = (polls + 30) * 1000 * (runnerFor(target).length ? 4 : 1);

  const samples: { poll: number; rssKiB: number }[] = [];
  let cpuAfterFirst = 0;
  for (const at of [1, 10, Math.floor(polls / 2), polls]) {
    const remaining = limitMs - (Date.now() - started);
    if (remaining <= 0) throw new Error(`timed out before poll ${at}\n${stderr}`);
    await dovecot.logoutLines({ atLeast: at, timeoutMs: remaining });
    if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode})\n${stderr}`);
    samples.push({ poll: at, rssKiB: procStatus(pid).rssKiB });
    if (at === 1) cpuAfterFirst = cpuSeconds(pid);
  }
  const { hwmKiB } = procStatus(pid);
  const cpu = cpuSeconds(pid);
  const lines = await dovecot.logoutLines();
  const idle = lines.slice(1);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

  console.log(`pop2mqtt-linux-${target}: ${lines.length} polls of an unchanged mailbox, 1 per second${runnerFor(target).length ? ' (under qemu-user: RSS includes the emulator)' : ''}`);
  for (const s of samples) console.log(`  RSS after poll ${String(s.poll).padStart(3)}: ${mib(s.rssKiB)} MiB`);
  console.log(`  peak RSS (VmHWM):    ${mib(hwmKiB)} MiB`);
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
