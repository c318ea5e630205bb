// Runs a private, real GNU Mailutils pop3d (own config, temp dir, free ports, STLS and implicit TLS, APOP) as a second, quirkier POP3 server for integration tests.
//
// Quirks of GNU Mailutils pop3d 3.15 that tests should know (seen on Debian 12):
// - Logins are virtual-domain users: the login name is `user@domain` (users given without a domain get
//   `@example.test`). Bare `user` is rejected. Passwords are checked against a crypt(3) hash.
// - CAPA: TOP UIDL RESP-CODES PIPELINING AUTH-RESP-CODE EXPIRENEVER USER STLS. No SASL: AUTH answers -ERR.
//   APOP works (the greeting carries the <timestamp>); its secrets live in a gdbm file made by popauth.
// - Mandatory locking must be off, otherwise logins fail with [IN-USE]; it is off here.
// - Default format here is mbox (home/INBOX). On QUIT pop3d rewrites the mbox even without DELE: it adds
//   X-UIDL, X-UID, Status (and X-IMAPbase on the first message) headers to the file. TOP and RETR output
//   carries an added `X-UIDL:` header (once the UIDL is known: stored in the file, or UIDL ran in this
//   session), so RETR can return more bytes than LIST announced. Same for format 'maildir'.
// - UIDLs look like `<md5>.<timestamp>.<n>`; once written into X-UIDL they are stable across sessions.
// - Mail appended while a session is open is kept when the session rewrites the mbox (it holds no lock for
//   the whole session). deliver() takes the dotlock (INBOX.lock) for its append, as pop3d does for rewrites.
// - Lines starting with "From " in a body are stored as ">From " (mboxrd quoting by deliver()); pop3d
//   removes one level of quoting when it sends the message.
// - format 'maildir': files must have LF line ends (CRLF files are served as empty messages), so deliver()
//   converts; pop3d then moves them to cur/ with ",a=O,u=N:2,S" in the name.
// - The daemon forks one process per connection; stop() kills the whole process group.
// - No per-session byte statistics like Dovecot's logout line; use a counting relay (relay.ts) instead.
import { appendFile, chmod, chown, mkdir, mkdtemp, open, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from './certs.js';
import { labPop3Server, type LabPop3Server } from './pop3-options.js';
import { removeOnExit, run, startForegroundOnFreePorts, tailFile } from './daemon.js';
import { ensureSystemUser } from './system-users.js';
import { deliverToMaildir } from './maildir.js';

export interface MailutilsOptions {
  /** Mail users; a name without '@' gets '@example.test'. Default alice@example.test / alice-secret-pw. */
  users?: { user: string; pass: string }[];
  /** Mailbox format of each user's INBOX (default 'mbox'). */
  format?: 'mbox' | 'maildir';
  /** STLS offered on the plain port (default true). */
  stls?: boolean;
  /** Log a transcript of every session to the log file (default false). */
  transcript?: boolean;
  certs?: TestCerts;
  /** Extra top-level statements appended to the pop3d config. */
  extraConf?: string;
  startTimeoutMs?: number;
}

export interface MailutilsServer extends LabPop3Server {
  /** Users with their full login names (user@domain). */
  users: { user: string; pass: string }[];
  format: 'mbox' | 'maildir';
  logFile: string;
  /** Full login name for a bare or full user name. */
  login(user: string): string;
  /** Path of the user's INBOX (mbox file or maildir directory). */
  mailbox(user: string): string;
  /** Deliver one message (mbox: dotlocked append with From_ line and >From quoting; maildir: tmp/ then new/). Returns the mailbox path or message file. */
  deliver(user: string, raw: string | Buffer): Promise<string>;
  deliverMany(user: string, raws: (string | Buffer)[]): Promise<void>;
  /** Number of messages currently stored in the user's mailbox (counts mbox From_ lines or maildir files). */
  storedCount(user: string): Promise<number>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
  /** Stop and start again on the same ports with the same config and mail. */
  restart(): Promise<void>;
}

const DEFAULT_DOMAIN = 'example.test';

function asctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** Turn a raw RFC 5322 message into one mbox entry: From_ line, LF line ends, mboxrd >From quoting, blank line after. */
export function toMboxEntry(raw: string | Buffer, date = new Date()): Buffer {
  let text = Buffer.isBuffer(raw) ? raw.toString('latin1') : Buffer.from(raw, 'utf8').toString('latin1');
  text = text.replace(/\r\n/g, '\n');
  if (!text.endsWith('\n')) text += '\n';
  text = text.replace(/^(>*From )/gm, '>$1');
  return Buffer.from(`From MAILER-DAEMON ${asctime(date)}\n${text}\n`, 'latin1');
}

async function withDotlock<T>(file: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(lock, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() >= deadline) throw new Error(`could not take dotlock ${lock} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

/** Start a private GNU Mailutils pop3d; resolves once both ports accept connections. */
export async function startMailutils(opts: MailutilsOptions = {}): Promise<MailutilsServer> {
  if (process.getuid?.() !== 0) throw new Error('startMailutils needs root (pop3d switches to the mail uid); run the tests as root');
  const format = opts.format ?? 'mbox';
  const users = (opts.users ?? [{ user: 'alice', pass: 'alice-secret-pw' }]).map((u) => ({
    user: u.user.includes('@') ? u.user : `${u.user}@${DEFAULT_DOMAIN}`,
    pass: u.pass,
  }));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-mailutils-'));
  await chmod(dir, 0o755);
  removeOnExit(dir);
  const mailUser = await ensureSystemUser('vmail');
  const certs = opts.certs ?? (await makeTestCA(path.join(dir, 'tls')));

  const login = (user: string): string => {
    const full = user.includes('@') ? user : `${user}@${DEFAULT_DOMAIN}`;
    if (!users.some((u) => u.user === full)) throw new Error(`unknown test mail user ${user}`);
    return full;
  };
  const home = (full: string) => path.join(dir, 'home', full.replace('@', '_at_'));
  const mailbox = (user: string) => path.join(home(login(user)), 'INBOX');

  // virtual domains: one passwd-format file per domain, named after the domain
  const virt = path.join(dir, 'virt');
  await mkdir(virt, { mode: 0o700 });
  await mkdir(path.join(dir, 'home'), { mode: 0o755 });
  const byDomain = new Map<string, string[]>();
  for (const u of users) {
    const [local, domain] = u.user.split('@') as [string, string];
    const { stdout } = await run('openssl', ['passwd', '-6', u.pass]);
    const line = `${local}:${stdout.trim()}:${mailUser.uid}:${mailUser.gid}::${home(u.user)}:/usr/sbin/nologin\n`;
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), line]);
    await mkdir(home(u.user), { mode: 0o700 });
    await chown(home(u.user), mailUser.uid, mailUser.gid);
    const inbox = path.join(home(u.user), 'INBOX');
    if (format === 'mbox') {
      await writeFile(inbox, '', { mode: 0o600 });
      await chown(inbox, mailUser.uid, mailUser.gid);
    } else {
      for (const p of [inbox, ...['cur', 'new', 'tmp'].map((s) => path.join(inbox, s))]) {
        await mkdir(p, { mode: 0o700 });
        await chown(p, mailUser.uid, mailUser.gid);
      }
    }
  }
  for (const [domain, lines] of byDomain) await writeFile(path.join(virt, domain), lines.join(''), { mode: 0o600 });

  // APOP secrets: gdbm database built by popauth from "user password" lines
  const apopTxt = path.join(dir, 'apop.txt');
  const apopDb = path.join(dir, 'apop.db');
  await writeFile(apopTxt, users.map((u) => `${u.user} ${u.pass}\n`).join(''), { mode: 0o600 });
  await run('popauth', ['-c', '-f', apopTxt, '-o', apopDb, '-P', '600']);
  await rm(apopTxt);

  const confFile = path.join(dir, 'pop3d.conf');
  const logFile = path.join(dir, 'pop3d.log');
  const pidFile = path.join(dir, 'pop3d.pid');
  const conf = (port: number, tlsPort: number) => `# pop2mqtt test harness: private GNU Mailutils pop3d instance
pidfile ${pidFile};
mandatory-locking { enable no; };
logging { syslog no; severity info; };
tls-file-checks { key-file none; cert-file none; ca-file none; };
auth { authentication generic; authorization virtdomain; };
virtdomain { passwd-dir ${virt}; };
apop-database-file ${apopDb};
apop-database-safety none;
tls { ssl-certificate-file ${certs.certFile}; ssl-key-file ${certs.keyFile}; };
transcript ${opts.transcript ? 'yes' : 'no'};
server 127.0.0.1:${port} { tls-mode ${opts.stls === false ? 'false' : 'ondemand'}; };
server 127.0.0.1:${tlsPort} { tls-mode connection; };
${opts.extraConf ?? ''}
`;

  const { endpoint, launch, halt } = await startForegroundOnFreePorts({
    dir,
    logFile,
    what: 'pop3d',
    timeoutMs: opts.startTimeoutMs ?? 10_000,
    prepare: async (port, tlsPort) => {
      await writeFile(confFile, conf(port, tlsPort));
      await rm(pidFile, { force: true });
      return { file: '/usr/sbin/pop3d', args: [`--config-file=${confFile}`, '--daemon', '--foreground'] };
    },
  });

  const deliver = async (user: string, raw: string | Buffer): Promise<string> => {
    const box = mailbox(user);
    if (format === 'mbox') {
      await withDotlock(box, () => appendFile(box, toMboxEntry(raw)));
      return box;
    }
    // Mailutils' maildir reader sees CRLF files as empty messages: store LF line ends (it sends CRLF).
    const lf = Buffer.from((Buffer.isBuffer(raw) ? raw.toString('latin1') : Buffer.from(raw, 'utf8').toString('latin1')).replace(/\r\n/g, '\n'), 'latin1');
    return deliverToMaildir(box, lf, mailUser);
  };

  return {
    ...labPop3Server(endpoint, certs, dir, users),
    format,
    logFile,
    login,
    mailbox,
    deliver,
    async deliverMany(user, raws) {
      for (const r of raws) await deliver(user, r);
    },
    async storedCount(user) {
      const box = mailbox(user);
      if (format === 'mbox') {
        const text = await readFile(box, 'latin1');
        return (text.match(/^From /gm) ?? []).length;
      }
      return (await readdir(path.join(box, 'new'))).length + (await readdir(path.join(box, 'cur'))).length;
    },
    logTail: (lines = 30) => tailFile(logFile, lines),
    stop: halt,
    async restart() {
      await halt();
      await launch();
    },
  };
}
