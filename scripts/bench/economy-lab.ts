// Lab for the economy integration tests: real Dovecot (rawlogs on, optional long-lived TLS login process) and Mosquitto, one mail user per scenario, configs for the real CLI, and what each poll cost.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type DovecotServer, type LogoutStats } from '../../test/support/dovecot.js';
import { startMosquitto, type MosquittoServer } from '../../test/support/mosquitto.js';
import { runCli, type CliResult } from '../../test/support/lab.js';
import { enableRawlog, RAWLOG_CONF, readSessions, type RawlogSession } from './rawlog.js';

/** Dovecot login service kept alive across connections, so TLS sessions can be resumed (see main.ts). */
export const RESUMABLE_LOGIN_CONF = 'service pop3-login {\n  service_count = 0\n  process_min_avail = 1\n}\n';

export interface EconomyLab {
  dovecot: DovecotServer;
  mosquitto: MosquittoServer;
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Mail users, each with the same password (env POP3_PASSWORD). */
  users: string[];
  /** Config for one user: implicit TLS (or `port`), keep: true, existing: process, rules given as YAML list items. */
  writeConfig(user: string, o: { rules: string; port?: number; mailboxExtra?: string; schedule?: string; name?: string }): Promise<string>;
  /** `pop2mqtt once`, which must exit 0; returns the CLI result and the Dovecot logout line and rawlog of its session. */
  once(user: string, config: string): Promise<{ cli: CliResult; logout: LogoutStats; rawlog: RawlogSession }>;
  /** Rawlog sessions of a user so far, oldest first. */
  rawlog(user: string): Promise<RawlogSession[]>;
  /** Remove every message file of a user (as if another client had deleted all mail). */
  emptyMailbox(user: string): Promise<void>;
  stop(): Promise<void>;
}

export const PASSWORD = 'econ-Pop3-pw-5521';

export async function startEconomyLab(o: { users: string[]; resumableTls?: boolean }): Promise<EconomyLab> {
  const [dovecot, mosquitto] = await Promise.all([
    startDovecot({ users: o.users.map((user) => ({ user, pass: PASSWORD })), extraConf: RAWLOG_CONF + (o.resumableTls ? RESUMABLE_LOGIN_CONF : '') }),
    startMosquitto(),
  ]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-economy-'));
  const rawDirs = new Map<string, string>();
  for (const u of o.users) rawDirs.set(u, await enableRawlog(dovecot.maildir(u)));
  const env = { ...process.env, POP3_PASSWORD: PASSWORD };

  const lab: EconomyLab = {
    dovecot, mosquitto, dir, env, users: o.users,
    async writeConfig(user, c) {
      const file = path.join(dir, `${c.name ?? user}.yaml`);
      await writeFile(file, `mqtt:
  url: ${mosquitto.url}
  base_topic: econ-${user}
state_dir: ./state-${c.name ?? user}
log_level: info
mailboxes:
  - id: ${user}
    host: 127.0.0.1
    port: ${c.port ?? dovecot.tlsPort}
    tls: implicit
    ca_file: ${dovecot.caFile}
    servername: localhost
    username: ${user}
    password: \${POP3_PASSWORD}
    schedule: "${c.schedule ?? '*/30 * * * * *'}"
    keep: true
    existing: process
${c.mailboxExtra ?? ''}rules:
${c.rules}`, { mode: 0o600 });
      return file;
    },
    async once(user, config) {
      // Sessions are told apart by Dovecot's session id, once the log has settled (another client's logout line
      // can still be on its way when this poll starts).
      const settledBefore = await dovecot.settled();
      const seen = new Set(settledBefore.map((l) => l.session));
      const rawBefore = (await lab.rawlog(user)).length;
      const cli = await runCli(['once', '--config', config], { env, cwd: dir, timeoutMs: 60_000 });
      if (cli.code !== 0) throw new Error(`pop2mqtt once exited ${cli.code}\n${cli.stderr}`);
      await dovecot.logoutLines({ atLeast: settledBefore.length + 1, timeoutMs: 10_000 });
      const fresh = (await dovecot.settled()).filter((l) => !seen.has(l.session));
      if (fresh.length !== 1) throw new Error(`expected one POP3 session, Dovecot logged ${fresh.length}: ${fresh.map((l) => l.raw).join('\n')}`);
      let sessions: RawlogSession[] = [];
      const deadline = Date.now() + 5_000;
      // The rawlog is complete once it holds the QUIT exchange.
      while (Date.now() < deadline) {
        sessions = await lab.rawlog(user);
        const last = sessions[sessions.length - 1];
        if (sessions.length > rawBefore && last?.exchanges.some((e) => e.shape === 'QUIT')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      if (sessions.length !== rawBefore + 1) throw new Error(`expected one new rawlog session for ${user}, have ${sessions.length - rawBefore}`);
      return { cli, logout: fresh[0]!, rawlog: sessions[sessions.length - 1]! };
    },
    rawlog: (user) => readSessions(rawDirs.get(user)!),
    async emptyMailbox(user) {
      const md = dovecot.maildir(user);
      for (const sub of ['new', 'cur']) for (const f of await readdir(path.join(md, sub))) await rm(path.join(md, sub, f));
    },
    async stop() {
      await Promise.allSettled([dovecot.stop(), mosquitto.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return lab;
}

/** A small alarm-like message whose subject names it, so alerts say exactly which message matched. */
export function tagged(tag: string, o: { bodyBytes?: number; body?: string } = {}): string {
  const body = o.body ?? `${'line of text for padding\r\n'.repeat(Math.ceil((o.bodyBytes ?? 200) / 26))}`;
  return `From: Sensor <sensor@devices.example>\r\nTo: alice@home.example\r\nSubject: ALARM ${tag}\r\nMessage-ID: <${tag}@devices.example>\r\nDate: Mon, 5 Jan 2026 06:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${body}`;
}
