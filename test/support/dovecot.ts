// Runs a private, real Dovecot POP3 server (own config, temp dir, free ports, plain+STLS and implicit TLS) for integration tests, with Maildir delivery and per-session logout statistics.
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from './certs.js';
import { labPop3Server, type LabPop3Server } from './pop3-options.js';
import { forgetOnExit, killAndWait, killGroupAndWait, killOnExit, pidAlive, readPidFile, removeOnExit, runDaemonizer, startOnFreePorts, tailFile, waitForPortClosed } from './daemon.js';
import { waitForPort } from './ports.js';
import { ensureSystemUser, lookupUser } from './system-users.js';
import { deliverToMaildir } from './maildir.js';

export interface MailUser {
  user: string;
  pass: string;
}

export interface DovecotOptions {
  /** Mail users; default one user alice/alice-secret-pw. */
  users?: MailUser[];
  /** Value of auth_mechanisms; default "plain login cram-md5 apop scram-sha-1 scram-sha-256". */
  authMechanisms?: string;
  /** Extra config lines appended at the end of dovecot.conf. */
  extraConf?: string;
  /** Reuse TLS material (e.g. to test a specific cert); default: a fresh CA + localhost cert in dir. */
  certs?: TestCerts;
  /**
   * Delay before a failed login is answered (auth_failure_delay); default '0' so tests stay fast.
   * Dovecot's own default is '2 secs'. The per-IP auth penalty of anvil is always disabled here.
   */
  authFailureDelay?: string;
  /** Time allowed for both ports to accept connections; default 10 s. */
  startTimeoutMs?: number;
}

/** One line of `pop3_logout_format` from the log: what a POP3 session did. */
export interface LogoutStats {
  user: string;
  /** TOP commands and bytes sent for them. */
  top: number;
  topBytes: number;
  /** RETR commands and bytes sent for them. */
  retr: number;
  retrBytes: number;
  /** Messages marked deleted, and messages in the mailbox at login. */
  del: number;
  msgs: number;
  /** Mailbox size at login. */
  size: number;
  /** Bytes received from / sent to the client after login (plaintext). */
  in: number;
  out: number;
  /** How the session ended, e.g. "Logged out" or "Connection closed". */
  reason: string;
  /** Dovecot's session id (the `session=<...>` of its Login line), '' if the line carries none. */
  session: string;
  /** The whole log line. */
  raw: string;
}

export interface DovecotServer extends LabPop3Server {
  users: MailUser[];
  logFile: string;
  /** Path of the Maildir of a user (contains cur/ new/ tmp/). */
  maildir(user: string): string;
  /** Deliver one message into Maildir/new (via tmp/, atomic rename); returns the final file path. */
  deliver(user: string, raw: string | Buffer): Promise<string>;
  /** Deliver several messages in order (UIDs follow this order). */
  deliverMany(user: string, raws: (string | Buffer)[]): Promise<void>;
  /** Files currently in Maildir/new and Maildir/cur (i.e. messages not yet expunged). */
  messageFiles(user: string): Promise<string[]>;
  /** Parsed logout lines so far; with atLeast, waits (bounded) until that many are logged. */
  logoutLines(opts?: { atLeast?: number; timeoutMs?: number }): Promise<LogoutStats[]>;
  /**
   * Logout lines once the log is settled: every session that logged in has its logout line and every logout line
   * its Login line (Dovecot's log process writes them asynchronously, so a client that just got QUIT's reply can
   * still be missing from the log). Take counts or session sets from this, never from a bare logoutLines().
   */
  settled(opts?: { timeoutMs?: number }): Promise<LogoutStats[]>;
  /** Tail of the Dovecot log, for diagnostics. */
  logTail(lines?: number): Promise<string>;
  /**
   * Stop the server and wait until its ports are closed. Default: SIGKILL of the whole Dovecot
   * process group (instant; log lines still in flight may be lost, so read logoutLines() first).
   * graceful: SIGTERM and wait for Dovecot's own shutdown (about 1 s) before that.
   */
  stop(opts?: { graceful?: boolean }): Promise<void>;
  /** Stop and start again on the same ports with the same config and mail. */
  restart(opts?: { graceful?: boolean }): Promise<void>;
}

const DEFAULT_MECHS = 'plain login cram-md5 apop scram-sha-1 scram-sha-256';
const MAIL_USER = 'vmail';

/** Session ids of every successful login (`pop3-login: Login: ... session=<id>`) in a log text. */
export function parseLoginSessions(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/pop3-login: (?:Info: )?Login: .*?session=<([^>]*)>/g)) out.push(m[1]!);
  return out;
}

/** Parse every `pop3(user)...: <reason> top=a/b, retr=c/d, del=e/f, size=g, in=h, out=i` line in a log text. */
export function parseLogoutLines(text: string): LogoutStats[] {
  const out: LogoutStats[] = [];
  const re =
    /pop3\(([^)]*)\)((?:<[^>]*>)*):\s*(?:Info:\s*)?(.*?)\s*top=(\d+)\/(\d+), retr=(\d+)\/(\d+), del=(\d+)\/(\d+), size=(\d+), in=(\d+), out=(\d+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const n = (i: number) => Number(m[i + 1]);
    // The prefix is <pid><session>; the session id is the last bracketed part.
    const ids = [...m[2]!.matchAll(/<([^>]*)>/g)].map((x) => x[1]!);
    out.push({
      user: m[1]!,
      reason: m[3]!.replace(/^Disconnected:\s*/, '').replace(/[:,]\s*$/, ''),
      top: n(3), topBytes: n(4), retr: n(5), retrBytes: n(6), del: n(7), msgs: n(8), size: n(9), in: n(10), out: n(11),
      session: ids.length >= 2 ? ids[ids.length - 1]! : '',
      raw: line,
    });
  }
  return out;
}

function buildConf(o: {
  dir: string; port: number; tlsPort: number; certs: TestCerts; mechs: string; uid: number; extra: string; failDelay: string;
}): string {
  const d = o.dir;
  return `# pop2mqtt test harness: private Dovecot instance, never the system one
instance_name = pop2mqtt-test-${path.basename(d)}
base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/dovecot.log
info_log_path = ${d}/dovecot.log
debug_log_path = ${d}/dovecot.log
protocols = pop3
listen = 127.0.0.1
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = ${o.uid}
last_valid_uid = ${o.uid}
ssl = yes
ssl_cert = <${o.certs.certFile}
ssl_key = <${o.certs.keyFile}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = ${o.mechs}
auth_verbose = yes
auth_cache_size = 0
auth_failure_delay = ${o.failDelay}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${d}/users.passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u ${d}/users.passwd
}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
pop3_logout_format = top=%t/%p, retr=%r/%b, del=%d/%m, size=%s, in=%i, out=%o
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${o.port}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = ${o.tlsPort}
    ssl = yes
  }
}
# no growing per-IP penalty after failed logins (every test client is 127.0.0.1)
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
${o.extra}
`;
}

/** Start a private Dovecot; resolves once both the plain and the TLS port accept connections. */
export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotServer> {
  if (process.getuid?.() !== 0) throw new Error('startDovecot needs root (Dovecot drops to a mail uid); run the tests as root');
  const users = opts.users ?? [{ user: 'alice', pass: 'alice-secret-pw' }];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-dovecot-'));
  await chmod(dir, 0o755);
  removeOnExit(dir);
  const mailUser = await ensureSystemUser(MAIL_USER);
  const dovecotUser = await lookupUser('dovecot');
  if (!dovecotUser) throw new Error('system user "dovecot" missing; run scripts/install-system-deps.sh');
  const certs = opts.certs ?? (await makeTestCA(path.join(dir, 'tls')));

  // passwd-file: user:{PLAIN}pass:uid:gid::home  (readable by the auth process, which runs as dovecot)
  const passwdFile = path.join(dir, 'users.passwd');
  const home = (u: string) => path.join(dir, 'mail', u);
  await writeFile(
    passwdFile,
    users.map((u) => `${u.user}:{PLAIN}${u.pass}:${mailUser.uid}:${mailUser.gid}::${home(u.user)}\n`).join(''),
    { mode: 0o640 },
  );
  await chown(passwdFile, 0, dovecotUser.gid);
  await mkdir(path.join(dir, 'mail'), { mode: 0o755 });
  for (const u of users) {
    for (const p of [home(u.user), path.join(home(u.user), 'Maildir'), ...['cur', 'new', 'tmp'].map((s) => path.join(home(u.user), 'Maildir', s))]) {
      await mkdir(p, { mode: 0o700 });
      await chown(p, mailUser.uid, mailUser.gid);
    }
  }

  const confFile = path.join(dir, 'dovecot.conf');
  const logFile = path.join(dir, 'dovecot.log');
  const pidFile = path.join(dir, 'run', 'master.pid');
  let port = 0;
  let tlsPort = 0;
  let pid: number | undefined;

  const launch = async (): Promise<void> => {
    await runDaemonizer('/usr/sbin/dovecot', ['-c', confFile], path.join(dir, 'dovecot.stderr'));
    // dovecot daemonizes; the master writes its pid file right after forking
    const deadline = Date.now() + 5_000;
    while ((pid = await readPidFile(pidFile)) === undefined) {
      if (Date.now() > deadline) throw new Error(`dovecot wrote no pid file\n${await tailFile(logFile)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    killOnExit(pid, 'SIGKILL', { group: true });
    const p = pid;
    const describe = async () => `dovecot log tail:\n${await tailFile(logFile)}`;
    const timeoutMs = opts.startTimeoutMs ?? 10_000;
    await waitForPort('127.0.0.1', port, { timeoutMs, alive: () => pidAlive(p), describe });
    await waitForPort('127.0.0.1', tlsPort, { timeoutMs, alive: () => pidAlive(p), describe });
  };

  const stopMaster = async (graceful = false): Promise<void> => {
    const p = pid ?? (await readPidFile(pidFile));
    if (p === undefined) return;
    // Graceful (SIGTERM) shutdown of Dovecot 2.3 takes about 1 s and hangs for 5 s when it hits
    // a process still starting up; the default is to SIGKILL the master's whole process group.
    if (graceful) await killAndWait(p, 'SIGTERM', 3_000);
    await killGroupAndWait(p);
    forgetOnExit(p);
    pid = undefined;
    // A killed master may linger as a zombie until reaped; Dovecot would then refuse to start
    // ("already running") because of its pid file.
    await rm(pidFile, { force: true });
    await waitForPortClosed('127.0.0.1', port);
    await waitForPortClosed('127.0.0.1', tlsPort);
  };

  const endpoint = await startOnFreePorts({
    dir,
    logFile,
    start: async (p, tp) => {
      [port, tlsPort] = [p, tp];
      await writeFile(
        confFile,
        buildConf({ dir, port, tlsPort, certs, mechs: opts.authMechanisms ?? DEFAULT_MECHS, uid: mailUser.uid, extra: opts.extraConf ?? '', failDelay: opts.authFailureDelay ?? '0' }),
      );
      await launch();
    },
    stop: () => stopMaster(),
  });

  const maildir = (user: string): string => {
    if (!users.some((u) => u.user === user)) throw new Error(`unknown test mail user ${user}`);
    return path.join(home(user), 'Maildir');
  };

  const deliver = (user: string, raw: string | Buffer): Promise<string> => deliverToMaildir(maildir(user), raw, mailUser);

  const server: DovecotServer = {
    ...labPop3Server(endpoint, certs, dir, users),
    logFile,
    maildir,
    deliver,
    async deliverMany(user, raws) {
      for (const r of raws) await deliver(user, r);
    },
    async messageFiles(user) {
      const md = maildir(user);
      const out: string[] = [];
      for (const sub of ['new', 'cur']) {
        for (const f of (await readdir(path.join(md, sub))).sort()) out.push(path.join(md, sub, f));
      }
      return out;
    },
    async logoutLines(o = {}) {
      const deadline = Date.now() + (o.timeoutMs ?? 5_000);
      for (;;) {
        let text = '';
        try {
          text = await readFile(logFile, 'utf8');
        } catch {
          /* not yet written */
        }
        const lines = parseLogoutLines(text);
        if (o.atLeast === undefined || lines.length >= o.atLeast) return lines;
        if (Date.now() >= deadline) {
          throw new Error(`expected at least ${o.atLeast} logout lines, have ${lines.length}\n${await tailFile(logFile)}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async settled(o = {}) {
      const deadline = Date.now() + (o.timeoutMs ?? 10_000);
      for (;;) {
        const text = await readFile(logFile, 'utf8').catch(() => '');
        const lines = parseLogoutLines(text);
        // Only sessions since the last start count: a killed server never logs the end of the sessions it had.
        const start = text.lastIndexOf(' starting up');
        const current = start < 0 ? text : text.slice(text.lastIndexOf('\n', start) + 1);
        const logins = new Set(parseLoginSessions(current));
        const out = new Set(parseLogoutLines(current).map((l) => l.session));
        const open = [...logins].filter((s) => !out.has(s));
        const orphan = parseLogoutLines(current).filter((l) => l.session && !logins.has(l.session));
        if (open.length === 0 && orphan.length === 0) return lines;
        if (Date.now() >= deadline) {
          throw new Error(`Dovecot log not settled: sessions without logout ${open.join(', ') || '-'}, logouts without login ${orphan.map((l) => l.session).join(', ') || '-'}\n${await tailFile(logFile)}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    logTail: (lines = 30) => tailFile(logFile, lines),
    async stop(o = {}) {
      await stopMaster(o.graceful);
    },
    async restart(o = {}) {
      await stopMaster(o.graceful);
      await launch();
    },
  };
  return server;
}
