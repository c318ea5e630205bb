// The client and the real daemon against a second real server, Cyrus pop3d 3.6, which drops commands pipelined behind AUTH: every mechanism works, and resumed polls never time out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCyrus, type CyrusServer } from '../support/cyrus.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { startRelay, type Relay } from '../support/relay.js';
import { startDaemon, until } from '../support/lab.js';
import { agentYaml } from '../support/config-yaml.js';
import { makeMail } from '../support/maildir.js';
import { Pop3Client, Pop3Memory, type ConcreteMechanism } from '../../src/pop3/index.js';
import { stopChild } from '../../scripts/bench/proc.js';

const USER = 'alice';
const PASS = 'alice-Cyrus-pw-4711';
let cyrus: CyrusServer;
let mosquitto: MosquittoServer;
let ca: Buffer;

before(async () => {
  [cyrus, mosquitto] = await Promise.all([startCyrus({ users: [{ user: USER, pass: PASS }] }), startMosquitto()]);
  ca = readFileSync(cyrus.caFile);
});
after(async () => {
  await Promise.allSettled([cyrus?.stop(), mosquitto?.stop()]);
});

/** What the sessions of this file remember between them, as one agent would. */
const memory = new Pop3Memory();
const connect = (o: { session?: Buffer; tls?: 'implicit' | 'starttls' } = {}) =>
  Pop3Client.connect({ memory,
    host: '127.0.0.1', port: o.tls === 'starttls' ? cyrus.port : cyrus.tlsPort, tls: o.tls ?? 'implicit', ca, servername: 'localhost',
    tlsSession: o.session, timeouts: { connectMs: 30_000, greetingMs: 30_000, commandMs: 30_000, sessionMs: 120_000 },
  });

/** One line from a raw TLS socket, bounded. */
function lineReader(sock: tls.TLSSocket): (timeoutMs?: number) => Promise<string> {
  let buf = '';
  const waiting: Array<() => void> = [];
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (const w of waiting.splice(0)) w();
  });
  return async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        return line;
      }
      if (Date.now() > deadline) throw new Error(`no line within ${timeoutMs} ms (have ${JSON.stringify(buf)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        waiting.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
}

test('Cyrus drops what is pipelined behind AUTH (why the client never does that), and answers what follows USER/PASS', async () => {
  await cyrus.deliver(USER, makeMail({ subject: 'probe mail' }));
  const ir = Buffer.from(`\0${USER}\0${PASS}`).toString('base64');
  const raw = async (first: string) => {
    const sock = tls.connect({ host: '127.0.0.1', port: cyrus.tlsPort, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
    const read = lineReader(sock);
    assert.match(await read(), /^\+OK .*Cyrus POP3/);
    sock.write(first);
    return { sock, read };
  };
  // AUTH PLAIN and STAT in one write: only the AUTH is answered. A NOOP sent afterwards gets the next reply, and
  // that reply is not the STAT's "+OK n size": the STAT was dropped (Cyrus even answers the NOOP with
  // "-ERR Unrecognized command", the remains of its reset input). A STAT sent alone then works.
  const a = await raw(`AUTH PLAIN ${ir}\r\nSTAT\r\n`);
  assert.match(await a.read(), /^\+OK/);
  a.sock.write('NOOP\r\n');
  assert.doesNotMatch(await a.read(), /^\+OK \d+ \d+$/);
  a.sock.write('STAT\r\n');
  assert.match(await a.read(), /^\+OK \d+ \d+$/);
  a.sock.destroy();
  // USER, PASS and STAT in one write: all three answered (RFC 2449 pipelining).
  const b = await raw(`USER ${USER}\r\nPASS ${PASS}\r\nSTAT\r\n`);
  assert.match(await b.read(), /^\+OK/);
  assert.match(await b.read(), /^\+OK/);
  assert.match(await b.read(), /^\+OK \d+ \d+$/);
  b.sock.destroy();
});

test('every password mechanism Cyrus offers logs in, over implicit TLS and STLS; loginAndStat resumes and sends nothing behind AUTH', async () => {
  const mechanisms: ConcreteMechanism[] = ['plain', 'login', 'user', 'apop', 'cram-md5', 'scram-sha-1', 'scram-sha-256'];
  for (const mode of ['implicit', 'starttls'] as const) {
    for (const mechanism of mechanisms) {
      const c = await connect({ tls: mode });
      const r = await c.login({ username: USER, password: PASS, mechanism, capaAfterLogin: false });
      assert.equal(r.mechanism, mechanism);
      assert.ok((await c.stat()).count >= 0);
      await c.quit();
    }
  }
  let session: Buffer | undefined;
  for (let i = 0; i < 6; i++) {
    const c = await connect({ session });
    assert.equal(c.tlsInfo?.resumed, i > 0, `session ${i} resumed`);
    const rt = c.stats.roundTrips;
    const r = await c.loginAndStat({ username: USER, password: PASS, capaAfterLogin: false }, 1);
    assert.equal(c.stats.roundTrips - rt, 2, 'AUTH alone, then STAT and UIDL 1 together');
    assert.ok(r.stat.count >= 1);
    assert.match(r.probeUid ?? '', /^\d+\.\d+$/);
    await c.quit();
    session = c.tlsSession ?? undefined;
  }
});

test('the daemon (`pop2mqtt run`) against Cyrus: at least 5 resumed polls, alerts arriving, no ETIMEOUT', async () => {
  const relay: Relay = await startRelay('127.0.0.1', cyrus.tlsPort);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-cyrus-daemon-'));
  let sub: Subscriber | undefined;
  let d: ReturnType<typeof startDaemon> | undefined;
  try {
    sub = await subscribe(mosquitto.url, ['pop2mqtt/alerts/#']);
    const cfg = path.join(dir, 'config.yaml');
    await writeFile(cfg, agentYaml({
      mqttUrl: mosquitto.url, stateDir: './state', id: 'cyrus', port: relay.port, caFile: cyrus.caFile, username: USER,
      mailboxExtra: '    servername: localhost\n    schedule: "*/2 * * * * *"\n    existing: skip\n',
      rules: '  - name: alarm\n    when: { subject: { contains: "ALARM" } }\n    publish: { topic: "alerts/{{subject}}" }\n',
    }), { mode: 0o600 });
    d = startDaemon(['run', '--config', cfg], { env: { ...process.env, POP3_PASSWORD: PASS }, cwd: dir });
    const daemon = d;
    const polls = () => daemon.output().split('\n').filter((l) => /\] poll messages=/.test(l)).length;
    // Mail arrives while it runs: one alarm after each of three polls, each alerted at a later poll.
    for (let i = 1; i <= 3; i++) {
      const seen = relay.connectionStats.length;
      await until(() => relay.connectionStats.length >= seen + 1 && polls() >= seen + 1, 60_000, `poll ${seen + 1}\n${daemon.output()}`);
      await cyrus.deliver(USER, makeMail({ subject: `ALARM ${i} on Cyrus` }));
      await sub.waitFor((m) => m.text.includes(`ALARM ${i} on Cyrus`), 60_000);
    }
    await until(() => relay.connectionStats.length >= 7 && polls() >= 7, 90_000, `7 polls\n${daemon.output()}`);
    const out = daemon.output();
    assert.doesNotMatch(out, /ETIMEOUT|poll failed/, out);
    const conns = relay.connectionStats.slice(0, 7);
    const first = conns[0]!;
    // Resumed: the server sends no certificate any more.
    const resumed = conns.slice(1).filter((c) => c.fromServer < first.fromServer - 400);
    assert.ok(resumed.length >= 5, `resumed polls: ${resumed.length} of ${conns.length - 1} (from server: ${conns.map((c) => c.fromServer).join(', ')} B)`);
    assert.equal(sub.messages.filter((m) => /ALARM \d on Cyrus/.test(m.text)).length, 3, 'each alarm alerted once');
  } finally {
    if (d) await stopChild(d.child);
    await sub?.close();
    await relay.close();
    await rm(dir, { recursive: true, force: true });
  }
});
