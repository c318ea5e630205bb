// fetchmail as the bench's reference peer: keep + uidl + fastuidl, implicit TLS with the test CA, a discarding MDA, its own home (idfile, pid file) in a temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { timedRun, type TimedRun } from './proc.js';

export const FETCHMAIL = '/usr/bin/fetchmail';

export interface FetchmailSetup {
  host: string;
  port: number;
  user: string;
  pass: string;
  caFile: string;
}

export interface FetchmailHome {
  dir: string;
  rcFile: string;
  idFile: string;
  env: NodeJS.ProcessEnv;
  remove(): Promise<void>;
}

/** The rc file: one POP3 server, implicit TLS verified against the CA, keep, uidl, fastuidl 1 (binary search on every poll). */
export function fetchmailRc(s: FetchmailSetup, home: string): string {
  const q = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return [
    'set no syslog',
    `set idfile ${q(path.join(home, 'fetchids'))}`,
    `set pidfile ${q(path.join(home, 'fetchmail.pid'))}`,
    `poll ${s.host} with proto POP3 port ${s.port} uidl`,
    `  user ${q(s.user)} there with password ${q(s.pass)} is root here`,
    `  options keep fastuidl 1 ssl sslcertck sslcertfile ${q(s.caFile)} sslcommonname localhost`,
    `  mda ${q('cat >/dev/null')}`,
    '',
  ].join('\n');
}

/** A fresh fetchmail home (no idfile yet: everything on the server is new to it). */
export async function makeFetchmailHome(s: FetchmailSetup): Promise<FetchmailHome> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-bench-fetchmail-'));
  const rcFile = path.join(dir, 'fetchmailrc');
  await writeFile(rcFile, fetchmailRc(s, dir), { mode: 0o600 });
  return {
    dir, rcFile, idFile: path.join(dir, 'fetchids'),
    env: { ...process.env, FETCHMAILHOME: dir, HOME: dir, LC_ALL: 'C' },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One fetchmail poll (`fetchmail -f rc`), under /usr/bin/time -v. Exit 0 = mail fetched, 1 = no mail: both are success. */
export async function fetchmailOnce(home: FetchmailHome, timeoutMs: number): Promise<TimedRun> {
  const r = await timedRun(FETCHMAIL, ['-f', home.rcFile, '--nosyslog'], { env: home.env, cwd: home.dir, timeoutMs });
  if (r.code !== 0 && r.code !== 1) throw new Error(`fetchmail exited with ${r.code ?? r.signal}\n${r.stderr.slice(-3000)}${r.stdout.slice(-1000)}`);
  return r;
}

/** fetchmail in daemon mode, kept in the foreground (--nodetach) so that the bench owns the process. */
export function fetchmailDaemon(home: FetchmailHome, intervalSeconds: number): { child: ChildProcess; output: () => string } {
  const child = spawn(FETCHMAIL, ['-f', home.rcFile, '--nosyslog', '--nodetach', '-d', String(intervalSeconds)], {
    env: home.env, cwd: home.dir, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  return { child, output: () => out };
}
