// A complete test lab for the real CLI: private Dovecot + Mosquitto, a config file for the agent, and helpers to run pop2mqtt.
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDovecot, type DovecotServer } from './dovecot.js';
import { startMosquitto, type MosquittoServer } from './mosquitto.js';
import { CAMERA_MOTION_RULE } from './rules.js';
import { agentYaml } from './config-yaml.js';
import { sleep } from './wait.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'pop2mqtt.js');

export const USER = 'alice';
export const PASS = 'alice-Secret-pw-4711';

export interface Lab {
  dovecot: DovecotServer;
  mosquitto: MosquittoServer;
  dir: string;
  /** Write a config file (YAML text) into the lab dir; returns its path. */
  writeConfig(yaml: string, name?: string): Promise<string>;
  /** Environment for the agent (POP3_PASSWORD etc.). */
  env: NodeJS.ProcessEnv;
  /** Run `fn` when the lab stops, before its servers (last deferred first; errors ignored): agents, subscribers. */
  defer(fn: () => Promise<unknown>): void;
  stop(): Promise<void>;
}

export async function startLab(opts: { mosquitto?: Parameters<typeof startMosquitto>[0] } = {}): Promise<Lab> {
  const [dovecot, mosquitto] = await Promise.all([startDovecot({ users: [{ user: USER, pass: PASS }] }), startMosquitto(opts.mosquitto)]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-lab-'));
  const deferred: Array<() => Promise<unknown>> = [];
  return {
    dovecot, mosquitto, dir,
    env: { ...process.env, POP3_PASSWORD: PASS },
    defer: (fn) => void deferred.push(fn),
    async writeConfig(yaml, name = 'config.yaml') {
      const file = path.join(dir, name);
      await writeFile(file, yaml, { mode: 0o600 });
      return file;
    },
    async stop() {
      for (const fn of deferred.splice(0).reverse()) await fn().catch(() => {});
      await Promise.allSettled([dovecot.stop(), mosquitto.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { CAMERA_MOTION_RULE } from './rules.js';

/** The minimal config from the README, pointed at the lab (implicit TLS port, the lab CA). */
export function minimalConfig(lab: Lab, o: { keep?: boolean; existing?: 'skip' | 'process'; rules?: string; extra?: string; mailboxExtra?: string; schedule?: string; port?: number; stateDir?: string } = {}): string {
  return agentYaml({
    mqttUrl: lab.mosquitto.url,
    stateDir: o.stateDir ?? './data',
    port: o.port ?? lab.dovecot.tlsPort,
    caFile: lab.dovecot.caFile,
    username: USER,
    mailboxExtra: `    schedule: "${o.schedule ?? '*/30 * * * * *'}"\n    keep: ${o.keep ?? true}\n    existing: ${o.existing ?? 'skip'}\n${o.mailboxExtra ?? ''}`,
    tail: o.extra,
    rules: o.rules ?? CAMERA_MOTION_RULE,
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the real CLI to completion, bounded in time. */
export function runCli(args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return runNode([BIN, ...args], o, `pop2mqtt ${args.join(' ')}`);
}

/** Run `node` with these arguments (a script of this repo, say) to completion, bounded in time. */
export function runNode(nodeArgs: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}, what = nodeArgs.join(' ')): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: o.cwd ?? ROOT, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} timed out after ${o.timeoutMs ?? 60_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, o.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

/** Start the daemon (`run`) in the background; the caller stops it. */
export function startDaemon(args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd ?? ROOT, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

/** A daemon from runAgent: startDaemon's child, output and exit, and a bounded stop. */
export interface RunningAgent extends ReturnType<typeof startDaemon> {
  /** SIGTERM, bounded wait; SIGKILL if it hangs 12 s. Resolves with the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `pop2mqtt run --config <config>` in the lab dir with the lab's environment, stopped at the latest by lab.stop().
 * Unless waitStarted is false, resolves once it logged "pop2mqtt started" and throws with its output when it exits or
 * does not start within timeoutMs.
 */
export async function runAgent(lab: Lab, config: string, o: { waitStarted?: boolean; timeoutMs?: number } = {}): Promise<RunningAgent> {
  const d = startDaemon(['run', '--config', config], { env: lab.env, cwd: lab.dir });
  const stop = async () => {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
    const timer = setTimeout(() => d.child.kill('SIGKILL'), 12_000);
    try {
      return await d.exited;
    } finally {
      clearTimeout(timer);
    }
  };
  lab.defer(stop);
  if (o.waitStarted !== false) {
    try {
      await until(() => /pop2mqtt started/.test(d.output()) || d.child.exitCode !== null, o.timeoutMs ?? 30_000, 'pop2mqtt started');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${d.output()}`);
    }
    if (d.child.exitCode !== null) throw new Error(`daemon exited early (${d.child.exitCode}):\n${d.output()}`);
  }
  return { ...d, stop };
}

/** Wait until fn() is true, polling; throws after timeoutMs. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Wait (bounded) until the daemon's output matches `re` at least `count` times; returns the matches. */
export async function waitForOutput(output: () => string, re: RegExp, timeoutMs: number, count = 1): Promise<string[]> {
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hits = output().match(g) ?? [];
    if (hits.length >= count) return hits;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${count}x ${re}; output:\n${output().slice(-4000)}`);
    await sleep(50);
  }
}
