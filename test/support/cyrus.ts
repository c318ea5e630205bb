// Runs a private, real Cyrus pop3d 3.6 (unpacked into .cache/cyrus/root by scripts/install-system-deps.sh; its packages conflict with dovecot-pop3d) as a second real POP3 server for integration tests.
//
// Facts about Cyrus pop3d 3.6.1 that tests rely on (Debian 12):
// - `master -C imapd.conf -M cyrus.conf` in the foreground starts the services with absolute `cmd=` paths: pop3
//   (plain, STLS), pop3s (`-s`, implicit TLS) and lmtpunix (delivery). It drops to the system user `cyrus` (group
//   `mail`), which must own the config, spool and socket directories.
// - Users live in a sasldb (`saslpasswd2 -f`, realm = servername) read through `sasl_pwcheck_method: auxprop`:
//   PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5 and SCRAM-* work, and USER/PASS (`allowplaintext`), APOP (`allowapop`).
//   `autocreate_post` creates INBOX at the first delivery.
// - CAPA: SASL (SCRAM-*, DIGEST-MD5, CRAM-MD5, NTLM, PLAIN, LOGIN), EXPIRE NEVER, LOGIN-DELAY 0, TOP, UIDL,
//   PIPELINING, RESP-CODES, AUTH-RESP-CODE, USER. UIDLs look like `<uidvalidity>.<uid>`.
// - It drops whatever was pipelined behind a successful AUTH (its SASL layer resets its input buffer there), while
//   commands pipelined after USER/PASS are answered.
// - Its TLS 1.3 session tickets are sealed with a key of the pop3d process that issued them, and a process serves
//   many connections one after the other. With several processes a ticket resumes only when the next connection
//   happens to reach the same one; `maxchild=1` here keeps one process per port, so every later session resumes.
// - It logs only to syslog (/dev/log); nothing here listens, so there are no per-session lines to read.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA } from './certs.js';
import { labPop3Server, type LabPop3Server } from './pop3-options.js';
import { removeOnExit, run, startForegroundOnFreePorts, tailFile } from './daemon.js';
import { ensureSystemUser } from './system-users.js';
import { ROOT } from './lab.js';

export const CYRUS_ROOT = path.join(process.env.POP2MQTT_CACHE_DIR ?? path.join(ROOT, '.cache'), 'cyrus', 'root');
const BIN = path.join(CYRUS_ROOT, 'usr', 'lib', 'cyrus', 'bin');

export interface CyrusOptions {
  /** Mail users (default alice / alice-secret-pw). */
  users?: { user: string; pass: string }[];
  startTimeoutMs?: number;
}

export interface CyrusServer extends LabPop3Server {
  /** Deliver one message to the user's INBOX (Cyrus's own `deliver`, LMTP to the lmtpunix service). */
  deliver(user: string, raw: string | Buffer): Promise<void>;
  /** master's own stdout/stderr (the services log to syslog only). */
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Start a private Cyrus master with pop3, pop3s and lmtpunix; resolves once both POP3 ports accept connections. */
export async function startCyrus(opts: CyrusOptions = {}): Promise<CyrusServer> {
  if (process.getuid?.() !== 0) throw new Error('startCyrus needs root (the master drops to the cyrus user); run the tests as root');
  if (!existsSync(path.join(BIN, 'pop3d'))) {
    throw new Error(`Cyrus is not unpacked at ${CYRUS_ROOT}: run scripts/install-system-deps.sh (apt-get download + dpkg-deb -x of cyrus-common and cyrus-pop3d)`);
  }
  const users = opts.users ?? [{ user: 'alice', pass: 'alice-secret-pw' }];
  const cyrus = await ensureSystemUser('cyrus', { group: 'mail' });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-cyrus-'));
  await chmod(dir, 0o755);
  removeOnExit(dir);
  const certs = await makeTestCA(path.join(dir, 'tls'));
  const d = (...p: string[]) => path.join(dir, ...p);
  for (const sub of ['conf', 'spool', 'socket', 'proc', 'lock', 'sieve']) {
    await mkdir(d(sub), { mode: 0o750 });
    await chown(d(sub), cyrus.uid, cyrus.gid);
  }
  // The services read the certificate and key as cyrus.
  await chmod(path.dirname(certs.keyFile), 0o755);
  await chown(certs.keyFile, cyrus.uid, cyrus.gid);
  const env = { ...process.env, LD_LIBRARY_PATH: [path.join(CYRUS_ROOT, 'usr', 'lib', `${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };

  const sasldb = d('sasldb2');
  for (const u of users) await run('saslpasswd2', ['-c', '-p', '-f', sasldb, '-u', 'localhost', u.user], { input: u.pass });
  await chown(sasldb, cyrus.uid, cyrus.gid);
  await chmod(sasldb, 0o640);

  const imapdConf = d('imapd.conf');
  const cyrusConf = d('cyrus.conf');
  const logFile = d('master.log');

  await writeFile(imapdConf, `# pop2mqtt test harness: private Cyrus instance
configdirectory: ${d('conf')}
proc_path: ${d('proc')}
mboxname_lockpath: ${d('lock')}
defaultpartition: default
partition-default: ${d('spool')}
sievedir: ${d('sieve')}
lmtpsocket: ${d('socket', 'lmtp')}
idlesocket: ${d('socket', 'idle')}
notifysocket: ${d('socket', 'notify')}
servername: localhost
popminpoll: 0
autocreate_quota: 0
autocreate_post: 1
allowplaintext: yes
allowapop: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: ${sasldb}
tls_server_cert: ${certs.certFile}
tls_server_key: ${certs.keyFile}
syslog_prefix: p2m-cyrus-test
`);

  const { endpoint, halt } = await startForegroundOnFreePorts({
    dir,
    logFile,
    env,
    what: 'Cyrus master',
    timeoutMs: opts.startTimeoutMs ?? 20_000,
    tolerateOpenPorts: true,
    prepare: async (port, tlsPort) => {
      await writeFile(cyrusConf, `START {
  recover cmd="${path.join(BIN, 'ctl_cyrusdb')} -r -C ${imapdConf}"
}
SERVICES {
  pop3 cmd="${path.join(BIN, 'pop3d')} -C ${imapdConf}" listen="127.0.0.1:${port}" prefork=0 maxchild=1
  pop3s cmd="${path.join(BIN, 'pop3d')} -s -C ${imapdConf}" listen="127.0.0.1:${tlsPort}" prefork=0 maxchild=1
  lmtpunix cmd="${path.join(BIN, 'lmtpd')} -C ${imapdConf}" listen="${d('socket', 'lmtp')}" prefork=0
}
EVENTS {
}
`);
      return { file: path.join(BIN, 'master'), args: ['-C', imapdConf, '-M', cyrusConf, '-p', d('master.pid')] };
    },
  });

  return {
    ...labPop3Server(endpoint, certs, dir, users),
    async deliver(user, raw) {
      const text = (Buffer.isBuffer(raw) ? raw.toString('latin1') : raw).replace(/\r?\n/g, '\r\n');
      await run(path.join(BIN, 'deliver'), ['-C', imapdConf, '-a', user, user], { input: Buffer.from(text, 'latin1'), uid: cyrus.uid, gid: cyrus.gid, env, timeoutMs: 30_000 });
    },
    logTail: (lines = 30) => tailFile(logFile, lines),
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}
