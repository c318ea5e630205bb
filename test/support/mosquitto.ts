// Runs a private, real Mosquitto broker (own config, temp dir, free ports; optional TLS, password auth and websockets; persistence so retained messages survive a restart) for integration tests.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from './certs.js';
import {
  forgetOnExit, killAndWait, killOnExit, pidAlive, readPidFile, removeOnExit, run, runDaemonizer, tailFile, waitForPortClosed,
} from './daemon.js';
import { freePorts, waitForPort } from './ports.js';

export interface MosquittoOptions {
  /** Add a TLS listener (tlsPort/tlsUrl) with a cert for localhost/127.0.0.1 signed by `caFile`. */
  tls?: boolean;
  /** Require these username/password pairs (allow_anonymous false); default anonymous access. */
  users?: { user: string; pass: string }[];
  /** Add a websockets listener (wsPort/wsUrl). */
  websockets?: boolean;
  /** Keep retained messages and sessions across stop()/restart() (default true). */
  persistence?: boolean;
  /** Reuse TLS material; default a fresh CA + localhost cert in dir (only when tls is set). */
  certs?: TestCerts;
  /** Extra config lines appended at the end of mosquitto.conf. */
  extraConf?: string;
  startTimeoutMs?: number;
}

export interface MosquittoServer {
  host: '127.0.0.1';
  port: number;
  /** mqtt://127.0.0.1:PORT */
  url: string;
  tlsPort?: number;
  /** mqtts://127.0.0.1:TLSPORT (the cert is valid for 127.0.0.1 and localhost) */
  tlsUrl?: string;
  wsPort?: number;
  /** ws://127.0.0.1:WSPORT */
  wsUrl?: string;
  caFile?: string;
  certs?: TestCerts;
  dir: string;
  logFile: string;
  logTail(lines?: number): Promise<string>;
  /** Clean shutdown (SIGTERM: Mosquitto writes its persistence file), waits until the ports are closed. */
  stop(): Promise<void>;
  /** stop() then start on the same ports with the same config; retained messages survive when persistence is on. */
  restart(): Promise<void>;
  /** Crash the broker (SIGKILL, nothing saved), waits until the ports are closed. start again with restart(). */
  kill(): Promise<void>;
}

/** Start a private Mosquitto; resolves once every listener accepts connections. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-mosquitto-'));
  removeOnExit(dir);
  const certs = opts.tls ? (opts.certs ?? (await makeTestCA(path.join(dir, 'tls')))) : undefined;
  const confFile = path.join(dir, 'mosquitto.conf');
  const logFile = path.join(dir, 'mosquitto.log');
  const pidFile = path.join(dir, 'mosquitto.pid');
  const passwdFile = path.join(dir, 'passwd');
  const persistence = opts.persistence ?? true;

  if (opts.users?.length) {
    let first = true;
    for (const u of opts.users) {
      await run('mosquitto_passwd', ['-b', ...(first ? ['-c'] : []), passwdFile, u.user, u.pass]);
      first = false;
    }
  }

  let port = 0;
  let tlsPort: number | undefined;
  let wsPort: number | undefined;
  let pid: number | undefined;

  const conf = (): string => {
    const lines = [
      '# pop2mqtt test harness: private Mosquitto instance, never the system one',
      'per_listener_settings false',
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `pid_file ${pidFile}`,
      `log_dest file ${logFile}`,
      'log_type error', 'log_type warning', 'log_type notice', 'log_type information',
      'connection_messages true',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      `persistence ${persistence}`,
      `persistence_location ${dir}/`,
      'set_tcp_nodelay true',
      opts.users?.length ? `allow_anonymous false\npassword_file ${passwdFile}` : 'allow_anonymous true',
      `listener ${port} 127.0.0.1`,
    ];
    if (certs && tlsPort) {
      lines.push(`listener ${tlsPort} 127.0.0.1`, `cafile ${certs.caFile}`, `certfile ${certs.certFile}`, `keyfile ${certs.keyFile}`, 'tls_version tlsv1.2');
    }
    if (wsPort) lines.push(`listener ${wsPort} 127.0.0.1`, 'protocol websockets');
    if (opts.extraConf) lines.push(opts.extraConf);
    return lines.join('\n') + '\n';
  };

  const launch = async (): Promise<void> => {
    await rm(pidFile, { force: true });
    await runDaemonizer('/usr/sbin/mosquitto', ['-c', confFile, '-d'], path.join(dir, 'mosquitto.stderr'));
    const describe = async () => `mosquitto log tail:\n${await tailFile(logFile)}\n${await tailFile(path.join(dir, 'mosquitto.stderr'), 10)}`;
    const deadline = Date.now() + 5_000;
    while ((pid = await readPidFile(pidFile)) === undefined) {
      if (Date.now() > deadline) throw new Error(`mosquitto wrote no pid file\n${await describe()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const p = pid;
    killOnExit(p, 'SIGKILL');
    const timeoutMs = opts.startTimeoutMs ?? 10_000;
    for (const lp of [port, tlsPort, wsPort]) {
      if (lp) await waitForPort('127.0.0.1', lp, { timeoutMs, alive: () => pidAlive(p), describe });
    }
  };

  const halt = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const p = pid ?? (await readPidFile(pidFile));
    if (p === undefined) return;
    await killAndWait(p, signal, 5_000);
    forgetOnExit(p);
    pid = undefined;
    await rm(pidFile, { force: true });
    for (const lp of [port, tlsPort, wsPort]) if (lp) await waitForPortClosed('127.0.0.1', lp);
  };

  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(3);
    port = ports[0]!;
    tlsPort = opts.tls ? ports[1] : undefined;
    wsPort = opts.websockets ? ports[2] : undefined;
    await writeFile(confFile, conf());
    try {
      await launch();
      break;
    } catch (err) {
      await halt('SIGKILL').catch(() => {});
      const log = await tailFile(logFile, 10);
      if (attempt < 3 && /Address already in use/i.test(String((err as Error).message) + log)) continue;
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }

  return {
    host: '127.0.0.1',
    port,
    url: `mqtt://127.0.0.1:${port}`,
    tlsPort,
    tlsUrl: tlsPort ? `mqtts://127.0.0.1:${tlsPort}` : undefined,
    wsPort,
    wsUrl: wsPort ? `ws://127.0.0.1:${wsPort}` : undefined,
    caFile: certs?.caFile,
    certs,
    dir,
    logFile,
    logTail: (lines = 30) => tailFile(logFile, lines),
    stop: () => halt('SIGTERM'),
    async restart() {
      await halt('SIGTERM');
      await launch();
    },
    kill: () => halt('SIGKILL'),
  };
}
