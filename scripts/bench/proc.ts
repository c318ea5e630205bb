// Process measurement for the bench: run a command under /usr/bin/time -v (wall time, peak RSS), and sample a live process's RSS and open fds from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const TIME_BIN = '/usr/bin/time';

export interface TimedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Date.now() just before spawn and when the process exited. */
  startedAt: number;
  endedAt: number;
  wallMs: number;
  /** "Maximum resident set size" from GNU time, KiB. */
  maxRssKiB: number;
  /** User + system CPU time from GNU time, ms (less disturbed by other load on the machine than wall time). */
  cpuMs: number;
}

/** Parse the `-v` report of GNU time. */
export function parseGnuTime(text: string): { maxRssKiB: number; elapsed: string | undefined; cpuMs: number } {
  const rss = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text);
  const el = /Elapsed \(wall clock\) time[^:]*:\s*(\S+)/.exec(text);
  const sec = (k: string) => Number(new RegExp(`${k} time \\(seconds\\):\\s*([\\d.]+)`).exec(text)?.[1] ?? NaN);
  return { maxRssKiB: rss ? Number(rss[1]) : NaN, elapsed: el?.[1], cpuMs: Math.round((sec('User') + sec('System')) * 1000) };
}

/**
 * The environment of every measured process, the agent (bundle or binary) and the bare-Node floor alike: the bench's
 * own without any NODE_* variable. A gateway runs the agent without them, and they change what is measured:
 * NODE_EXTRA_CA_CERTS (this machine sets it to the system bundle) makes Node parse its ~140 certificates at every
 * boot (about 40 ms of CPU on Node 20) although the agent verifies its servers with the config's ca_file; NODE_OPTIONS
 * would hand the bench's own flags to the agent. Flags and variables for a measurement are given explicitly
 * (--node-arg, --env), on top of this.
 */
export function measuredEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NODE_')) delete env[k];
  return { ...env, ...extra };
}

/** Run a command to completion under `/usr/bin/time -v`, bounded in time. */
export async function timedRun(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number; onStart?: (child: ChildProcess) => void }): Promise<TimedRun> {
  if (!existsSync(TIME_BIN)) throw new Error(`${TIME_BIN} is missing (Debian package "time")`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-bench-time-'));
  const report = path.join(dir, 'time.txt');
  try {
    const startedAt = Date.now();
    const child = spawn(TIME_BIN, ['-v', '-o', report, cmd, ...args], { env: o.env ?? measuredEnv(), cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    o.onStart?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${cmd} ${args.join(' ')} timed out after ${o.timeoutMs} ms\n${stderr.slice(-2000)}`));
      }, o.timeoutMs);
      child.on('error', reject);
      child.on('close', (c, s) => {
        clearTimeout(timer);
        resolve({ code: c, signal: s });
      });
    });
    const endedAt = Date.now();
    const { maxRssKiB, cpuMs } = parseGnuTime(await readFile(report, 'utf8').catch(() => ''));
    return { code, signal, stdout, stderr, startedAt, endedAt, wallMs: endedAt - startedAt, maxRssKiB, cpuMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ProcSample {
  at: number;
  rssKiB: number;
  /** Peak RSS so far (VmHWM). */
  hwmKiB: number;
  fds: number;
}

/** RSS, peak RSS and open file descriptors of a live process; undefined once it is gone. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { at: Date.now(), rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), fds };
  } catch {
    return undefined;
  }
}

/** Wait for a child to exit after a signal, SIGKILL after graceMs. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Send a signal to a pid we started (by way of a daemonizing program) and wait until it is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(pid, 'SIGKILL');
}
