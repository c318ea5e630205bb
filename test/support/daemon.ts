// Process-lifecycle helpers shared by the real-server harnesses: pid checks, bounded kill-and-wait, log tails, and an exit hook so no daemon outlives the test process.
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { canConnect, freePorts, waitForPort } from './ports.js';

/** True while a process with this pid exists (and is not a zombie we can see). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie still answers kill(0); treat it as gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z';
  } catch {
    return true;
  }
}

/** Read a pid file; undefined when missing or malformed. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Poll until the pid is gone or timeoutMs passes; resolves whether it is gone. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Send `signal`, wait up to graceMs, then SIGKILL and wait again (bounded). */
export async function killAndWait(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  if (await waitForExit(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  if (!(await waitForExit(pid, 2_000))) throw new Error(`process ${pid} did not exit after SIGKILL`);
}

const exitPids = new Map<number, { signal: NodeJS.Signals; group: boolean }>();
const exitDirs = new Set<string>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.once('exit', cleanupNow);
  // A test process ended by a signal (runner cancelled, Ctrl-C) emits no 'exit': clean up, then let the
  // signal do what it would have done, unless someone else handles it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      cleanupNow();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

/** Kill every registered daemon and remove registered temp dirs, synchronously. */
function cleanupNow(): void {
  for (const [p, o] of exitPids) {
    try {
      process.kill(o.group ? -p : p, o.signal);
    } catch {
      /* already gone */
    }
  }
  exitPids.clear();
  if (process.env.P2M_KEEP_TEST_DIRS) return;
  for (const d of exitDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  exitDirs.clear();
}

/**
 * Make sure `pid` gets `signal` if the test process exits while it is still registered
 * (group: signal its whole process group, for daemons that lead one).
 */
export function killOnExit(pid: number, signal: NodeJS.Signals = 'SIGTERM', opts: { group?: boolean } = {}): void {
  exitPids.set(pid, { signal, group: opts.group ?? false });
  installExitHook();
}

/** Remove this temp dir when the test process exits (unless P2M_KEEP_TEST_DIRS is set, for debugging). */
export function removeOnExit(dir: string): void {
  exitDirs.add(dir);
  installExitHook();
}

/** Forget a pid registered with killOnExit (after a clean stop). */
export function forgetOnExit(pid: number): void {
  exitPids.delete(pid);
}

/** Last `lines` lines of a text file, or a note that it cannot be read. */
export async function tailFile(path: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch (err) {
    return `(no log at ${path}: ${(err as Error).message})`;
  }
}

/**
 * Run a program (with `input` on its stdin, as uid/gid when given), resolve stdout/stderr; reject with both in the
 * message on a non-zero exit or after timeoutMs.
 */
export function run(
  file: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; input?: string | Buffer; uid?: number; gid?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: opts.timeoutMs ?? 15_000, env: opts.env ?? process.env, cwd: opts.cwd, maxBuffer: 4 << 20, uid: opts.uid, gid: opts.gid },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`.trim()));
        } else {
          resolve({ stdout: String(stdout), stderr: String(stderr) });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Run a program that daemonizes itself (forks and exits). Its stdout/stderr go to `outFile` (never to
 * pipes, which the daemon would inherit and keep open). Resolves when the launcher exits with 0;
 * rejects with the output on failure or after timeoutMs.
 */
export async function runDaemonizer(file: string, args: string[], outFile: string, timeoutMs = 10_000): Promise<void> {
  const fd = openSync(outFile, 'a');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(file, args, { stdio: ['ignore', fd, fd] });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${file} ${args.join(' ')} did not return within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else {
          let out = '';
          try {
            out = readFileSync(outFile, 'utf8').split('\n').slice(-20).join('\n');
          } catch {
            /* ignore */
          }
          reject(new Error(`${file} ${args.join(' ')} exited with ${code ?? signal}\n${out}`));
        }
      });
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * Kill a whole process group at once with SIGKILL (a daemon that called setsid() leads its own group)
 * and wait, bounded, until its leader is gone. Used for a fast stop when graceful shutdown is slow.
 */
export async function killGroupAndWait(leaderPid: number, timeoutMs = 3_000): Promise<void> {
  try {
    process.kill(-leaderPid, 'SIGKILL');
  } catch {
    try {
      process.kill(leaderPid, 'SIGKILL');
    } catch {
      return;
    }
  }
  if (!(await waitForExit(leaderPid, timeoutMs))) throw new Error(`process group ${leaderPid} did not exit after SIGKILL`);
}

/** Wait (bounded) until nothing accepts connections on host:port any more. */
export async function waitForPortClosed(host: string, port: number, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await canConnect(host, port, 200)) {
    if (Date.now() >= deadline) throw new Error(`${host}:${port} still accepts connections after stop`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Start a server that stays in the foreground, in its own process group (so stopForegroundServer kills it with every
 * session process), its output appended to logFile and killed at exit; resolves with its pid once every port accepts.
 */
export async function startForegroundServer(o: {
  file: string; args: string[]; env?: NodeJS.ProcessEnv; logFile: string; ports: number[]; timeoutMs: number; what: string;
}): Promise<number> {
  const fd = openSync(o.logFile, 'a');
  let child;
  try {
    child = spawn(o.file, o.args, { detached: true, stdio: ['ignore', fd, fd], env: o.env ?? process.env });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const p = child.pid;
  if (p === undefined) throw new Error(`could not spawn ${o.what}`);
  killOnExit(p, 'SIGKILL', { group: true });
  const describe = async () => `${o.what} log tail:\n${await tailFile(o.logFile)}`;
  try {
    for (const port of o.ports) await waitForPort('127.0.0.1', port, { timeoutMs: o.timeoutMs, alive: () => pidAlive(p), describe });
  } catch (err) {
    await stopForegroundServer(p, [], {});
    throw err;
  }
  return p;
}

/** Stop a server from startForegroundServer: kill its process group, then wait until its ports are closed. */
export async function stopForegroundServer(pid: number, ports: number[], o: { tolerateOpenPorts?: boolean }): Promise<void> {
  await killGroupAndWait(pid);
  forgetOnExit(pid);
  for (const port of ports) {
    const closed = waitForPortClosed('127.0.0.1', port);
    await (o.tolerateOpenPorts ? closed.catch(() => {}) : closed);
  }
}

/**
 * Start a server on two free loopback ports (plain and implicit TLS). The ports are free when picked but a parallel
 * test may take one before the server binds: on a bind failure `stop` and try again with new ports (3 attempts).
 * On any other failure `dir` is removed and the error thrown. Resolves with the ports the server listens on.
 */
export async function startOnFreePorts(o: {
  dir: string;
  logFile: string;
  start(port: number, tlsPort: number): Promise<void>;
  stop(): Promise<void>;
}): Promise<{ host: '127.0.0.1'; port: number; tlsPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port, tlsPort] = (await freePorts(2)) as [number, number];
    try {
      await o.start(port, tlsPort);
      return { host: '127.0.0.1', port, tlsPort };
    } catch (err) {
      await o.stop().catch(() => {});
      if (attempt < 3 && /Address already in use|bind/i.test(String((err as Error).message) + (await tailFile(o.logFile, 10)))) continue;
      await rm(o.dir, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }
}

/**
 * A foreground server (startForegroundServer) on two free loopback ports (startOnFreePorts). `prepare` runs before
 * every start, the first and each launch() after halt(): it writes the config for the ports and gives the command.
 */
export async function startForegroundOnFreePorts(o: {
  dir: string;
  logFile: string;
  what: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Leave a port that still accepts after the stop to the next start (a lingering session process). */
  tolerateOpenPorts?: boolean;
  prepare(port: number, tlsPort: number): Promise<{ file: string; args: string[] }>;
}): Promise<{ endpoint: { host: '127.0.0.1'; port: number; tlsPort: number }; launch(): Promise<void>; halt(): Promise<void> }> {
  let ports: [number, number] = [0, 0];
  let pid: number | undefined;
  const launch = async (): Promise<void> => {
    const cmd = await o.prepare(...ports);
    pid = await startForegroundServer({ ...cmd, env: o.env, logFile: o.logFile, ports, timeoutMs: o.timeoutMs, what: o.what });
  };
  const halt = async (): Promise<void> => {
    if (pid === undefined) return;
    const p = pid;
    pid = undefined;
    await stopForegroundServer(p, ports, { tolerateOpenPorts: o.tolerateOpenPorts });
  };
  const endpoint = await startOnFreePorts({
    dir: o.dir,
    logFile: o.logFile,
    start: async (port, tlsPort) => {
      ports = [port, tlsPort];
      await launch();
    },
    stop: halt,
  });
  return { endpoint, launch, halt };
}

