// Proves the real-server test harness: private Dovecot, GNU Mailutils pop3d and Mosquitto start, accept logins over plain/STLS/TLS, see delivered mail, report stats; the relay counts and cuts; sample mail parses.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import mqtt from 'mqtt';
import { makeExpiredCert, makeTestCA, makeWrongNameCert } from '../support/certs.js';
import { parseLogoutLines, startDovecot, type DovecotServer } from '../support/dovecot.js';
import { fakeJpeg, makeMail } from '../support/maildir.js';
import { startMailutils, type MailutilsServer } from '../support/mailutils.js';
import { startMosquitto } from '../support/mosquitto.js';
import { subscribe } from '../support/mqtt-subscriber.js';
import { canConnect, freePort } from '../support/ports.js';
import { startRelay } from '../support/relay.js';

const T = { timeout: 30_000 };

/** Minimal line-oriented POP3 peer for these checks only (the product has its own client). */
class RawPop3 {
  private buf = '';
  private waiters: (() => void)[] = [];
  private closed = false;
  received = 0;
  constructor(private sock: net.Socket) {
    this.attach(sock);
  }
  private attach(sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      this.buf += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('error', () => {});
  }
  static async connect(port: number, opts: { tls?: boolean; ca?: string } = {}): Promise<RawPop3> {
    const sock = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, ca: opts.ca, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      sock.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      sock.once('error', reject);
    });
    return new RawPop3(sock);
  }
  async line(timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        return l;
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms; pending: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  async cmd(line: string): Promise<string> {
    this.sock.write(line + '\r\n');
    return this.line();
  }
  /** Lines of a multi-line body up to the terminating ".", dot-unstuffed. */
  async multi(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line();
      if (l === '.') return out;
      out.push(l.startsWith('.') ? l.slice(1) : l);
    }
  }
  async stls(ca: string): Promise<void> {
    const ok = await this.cmd('STLS');
    assert.match(ok, /^\+OK/);
    this.sock.removeAllListeners('data');
    const secure = tls.connect({ socket: this.sock, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.sock = secure;
    this.attach(secure);
  }
  async quit(): Promise<void> {
    if (!this.closed) {
      await this.cmd('QUIT').catch(() => '');
      this.sock.end();
    }
  }
  destroy() {
    this.sock.destroy();
  }
}

async function login(p: RawPop3, user: string, pass: string): Promise<void> {
  assert.match(await p.cmd(`USER ${user}`), /^\+OK/);
  assert.match(await p.cmd(`PASS ${pass}`), /^\+OK/);
}

function tlsHandshake(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    s.once('secureConnect', () => {
      s.destroy();
      resolve('ok');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      s.destroy();
      resolve(err.code ?? err.message);
    });
  });
}

describe('certs', () => {
  test('valid cert verifies for localhost and 127.0.0.1; expired and wrong-name certs are rejected', T, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-certs-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const good = await makeTestCA(dir);
    const expired = await makeExpiredCert(dir);
    const wrong = await makeWrongNameCert(dir);
    assert.equal(expired.caFile, good.caFile);
    const ca = await readFile(good.caFile, 'utf8');
    const results: Record<string, string> = {};
    for (const [name, c] of Object.entries({ good, expired, wrong })) {
      const server = tls.createServer({ cert: await readFile(c.certFile), key: await readFile(c.keyFile) }, (s) => s.end());
      server.on('tlsClientError', () => {});
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      results[name] = await tlsHandshake(port, ca);
      // the SAN also covers the IP address
      if (name === 'good') {
        results.goodIp = await new Promise((resolve) => {
          const s = tls.connect({ host: '127.0.0.1', port, ca });
          s.once('secureConnect', () => (s.destroy(), resolve('ok')));
          s.once('error', (e: NodeJS.ErrnoException) => (s.destroy(), resolve(e.code ?? e.message)));
        });
      }
      await new Promise<void>((r) => server.close(() => r()));
    }
    assert.deepEqual(results, { good: 'ok', goodIp: 'ok', expired: 'CERT_HAS_EXPIRED', wrong: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });
});

describe('ports', () => {
  test('freePort returns a bindable port', T, async () => {
    const port = await freePort();
    assert.ok(port > 1024 && port < 65536);
    const srv = net.createServer();
    await new Promise<void>((r, j) => srv.once('error', j).listen(port, '127.0.0.1', () => r()));
    assert.equal(await canConnect('127.0.0.1', port), true);
    await new Promise<void>((r) => srv.close(() => r()));
  });
});

describe('dovecot', () => {
  let dc: DovecotServer;
  let ca: string;
  before(async () => {
    dc = await startDovecot({ users: [{ user: 'alice', pass: 'alice-pw' }, { user: 'bob', pass: 'bob-pw' }] });
    ca = await readFile(dc.caFile, 'utf8');
  });
  after(async () => {
    await dc?.stop();
  });

  test('plain port: APOP greeting, CAPA with STLS/SASL, login, STAT sees delivered mail in order, TOP-only session logged', T, async () => {
    await dc.deliverMany('alice', [makeMail({ subject: 'first' }), makeMail({ subject: 'second' })]);
    const p = await RawPop3.connect(dc.port);
    const greeting = await p.line();
    assert.match(greeting, /^\+OK .*<[^>]+@[^>]+>/);
    assert.match(await p.cmd('CAPA'), /^\+OK/);
    const capa = await p.multi();
    assert.ok(capa.includes('STLS'), capa.join('|'));
    assert.ok(capa.some((c) => /^SASL .*CRAM-MD5.*SCRAM-SHA-256/.test(c)), capa.join('|'));
    await login(p, 'alice', 'alice-pw');
    const stat = await p.cmd('STAT');
    const m = /^\+OK (\d+) (\d+)$/.exec(stat);
    assert.ok(m, stat);
    assert.equal(Number(m[1]), 2);
    assert.match(await p.cmd('UIDL'), /^\+OK/);
    const uidls = (await p.multi()).map((l) => l.split(' ')[1]!);
    assert.equal(uidls.length, 2);
    assert.match(uidls[0]!, /^[0-9a-fA-F]{16}$/);
    assert.ok(uidls[0]! < uidls[1]!, `UIDs follow delivery order: ${uidls.join(',')}`);
    assert.match(await p.cmd('TOP 1 0'), /^\+OK/);
    const head = await p.multi();
    assert.ok(head.includes('Subject: first'), head.join('\n'));
    assert.equal(head.at(-1), '');
    await p.quit();

    // settled() returns once the session that just quit has its logout line, with the Login line's session id.
    const lines = await dc.settled();
    const mine = lines.filter((l) => l.user === 'alice');
    assert.equal(mine.length, 1, JSON.stringify(lines));
    const s = mine[0]!;
    assert.match(s.session, /^[\w+/=]{8,}$/, s.raw);
    assert.ok((await readFile(dc.logFile, 'utf8')).includes(`Login: user=<alice>`) && (await readFile(dc.logFile, 'utf8')).includes(`session=<${s.session}>`), 'the logout line carries the Login line\'s session id');
    assert.equal(s.top, 1);
    assert.ok(s.topBytes > 0);
    assert.equal(s.retr, 0);
    assert.equal(s.retrBytes, 0);
    assert.equal(s.del, 0);
    assert.equal(s.msgs, 2);
    assert.equal(s.size, Number(m[2]));
    assert.equal(s.reason, 'Logged out');
    assert.ok(s.in > 0 && s.out > 0);
  });

  test('implicit TLS port and STLS on the plain port accept logins with the generated CA', T, async () => {
    await dc.deliver('bob', makeMail({ subject: 'for bob' }));
    const a = await RawPop3.connect(dc.tlsPort, { tls: true, ca });
    assert.match(await a.line(), /^\+OK/);
    await login(a, 'bob', 'bob-pw');
    assert.match(await a.cmd('STAT'), /^\+OK 1 \d+$/);
    await a.quit();

    const b = await RawPop3.connect(dc.port);
    assert.match(await b.line(), /^\+OK/);
    await b.stls(ca);
    assert.match(await b.cmd('CAPA'), /^\+OK/);
    assert.ok(!(await b.multi()).includes('STLS'));
    await login(b, 'bob', 'bob-pw');
    assert.match(await b.cmd('STAT'), /^\+OK 1 \d+$/);
    await b.quit();
  });

  test('wrong password is refused; APOP works with the {PLAIN} passdb', T, async () => {
    const p = await RawPop3.connect(dc.port);
    await p.line();
    assert.match(await p.cmd('USER alice'), /^\+OK/);
    assert.match(await p.cmd('PASS nope'), /^-ERR/);
    await p.quit();

    const a = await RawPop3.connect(dc.port);
    const stamp = /<[^>]+>/.exec(await a.line())![0];
    const digest = crypto.createHash('md5').update(stamp + 'alice-pw').digest('hex');
    assert.match(await a.cmd(`APOP alice ${digest}`), /^\+OK/);
    await a.quit();
  });

  test('DELE + QUIT expunges the file; restart keeps ports and mail', T, async () => {
    const before = (await dc.messageFiles('bob')).length;
    assert.equal(before, 1);
    await dc.deliver('bob', makeMail({ subject: 'second for bob' }));
    const p = await RawPop3.connect(dc.port);
    await p.line();
    await login(p, 'bob', 'bob-pw');
    assert.match(await p.cmd('DELE 1'), /^\+OK/);
    await p.quit();
    const bobLines = (await dc.logoutLines({ atLeast: 1 })).filter((l) => l.user === 'bob' && l.del === 1);
    assert.equal(bobLines.length, 1);
    assert.equal((await dc.messageFiles('bob')).length, 1);

    const port = dc.port;
    await dc.restart();
    assert.equal(dc.port, port);
    const q = await RawPop3.connect(dc.port);
    await q.line();
    await login(q, 'bob', 'bob-pw');
    assert.match(await q.cmd('STAT'), /^\+OK 1 \d+$/);
    await q.quit();
  });

  test('stop closes both ports', T, async () => {
    const extra = await startDovecot();
    assert.equal(await canConnect('127.0.0.1', extra.tlsPort), true);
    await extra.stop();
    assert.equal(await canConnect('127.0.0.1', extra.port), false);
    assert.equal(await canConnect('127.0.0.1', extra.tlsPort), false);
  });

  test('logout line parser reads Dovecot 2.3 lines and ignores others', () => {
    const text = [
      'Nov 22 00:07:39 pop3-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.1',
      'Nov 22 00:07:39 pop3(alice)<10519><cr3zQ9JgDsB/AAAB>: Info: Disconnected: Logged out top=1/20, retr=2/3000, del=1/3, size=1234, in=21, out=67',
      'Nov 22 00:07:40 pop3(bob@x)<10520><abc>: Info: Disconnected: Connection closed (UIDL finished 0.1 secs ago) top=0/0, retr=0/0, del=0/0, size=0, in=10, out=20',
    ].join('\n');
    const parsed = parseLogoutLines(text);
    assert.equal(parsed.length, 2);
    assert.deepEqual(
      { ...parsed[0], raw: undefined },
      { user: 'alice', reason: 'Logged out', top: 1, topBytes: 20, retr: 2, retrBytes: 3000, del: 1, msgs: 3, size: 1234, in: 21, out: 67, session: 'cr3zQ9JgDsB/AAAB', raw: undefined },
    );
    assert.equal(parsed[1]!.user, 'bob@x');
    assert.equal(parsed[1]!.session, 'abc');
    assert.equal(parsed[1]!.reason, 'Connection closed (UIDL finished 0.1 secs ago)');
  });
});

describe('mailutils pop3d', () => {
  let mu: MailutilsServer;
  let ca: string;
  before(async () => {
    mu = await startMailutils({ users: [{ user: 'carol', pass: 'carol-pw' }] });
    ca = await readFile(mu.caFile, 'utf8');
  });
  after(async () => {
    await mu?.stop();
  });

  test('plain port: login as user@domain, STAT sees delivered mbox mail, X-UIDL added to TOP after UIDL, >From unquoted, no SASL', T, async () => {
    await mu.deliverMany('carol', [makeMail({ subject: 'one', body: 'From the garage\nline\n' }), makeMail({ subject: 'two' })]);
    assert.equal(await mu.storedCount('carol'), 2);
    const p = await RawPop3.connect(mu.port);
    assert.match(await p.line(), /^\+OK .*<[^>]+>/);
    assert.match(await p.cmd('CAPA'), /^\+OK/);
    const capa = await p.multi();
    assert.ok(capa.includes('STLS') && capa.includes('UIDL') && capa.includes('TOP'), capa.join('|'));
    assert.ok(!capa.some((c) => c.startsWith('SASL')));
    assert.match(await p.cmd('AUTH PLAIN'), /^-ERR/);
    await login(p, mu.login('carol'), 'carol-pw');
    assert.match(await p.cmd('STAT'), /^\+OK 2 \d+$/);
    // first session, before UIDL: no X-UIDL header yet; after UIDL, TOP carries it
    assert.match(await p.cmd('TOP 1 0'), /^\+OK/);
    const head = await p.multi();
    assert.ok(head.includes('Subject: one'));
    assert.ok(!head.some((l) => /^X-UIDL: /.test(l)), head.join('\n'));
    assert.match(await p.cmd('UIDL'), /^\+OK/);
    const uidls = (await p.multi()).map((l) => l.split(' ')[1]!);
    assert.equal(uidls.length, 2);
    assert.match(await p.cmd('TOP 2 0'), /^\+OK/);
    const head2 = await p.multi();
    assert.ok(head2.includes(`X-UIDL: ${uidls[1]}`), head2.join('\n'));
    assert.match(await p.cmd('RETR 1'), /^\+OK/);
    const body = await p.multi();
    assert.ok(body.includes('From the garage'), body.join('\n'));
    await p.quit();
  });

  test('implicit TLS, STLS and APOP work', T, async () => {
    const a = await RawPop3.connect(mu.tlsPort, { tls: true, ca });
    assert.match(await a.line(), /^\+OK/);
    await login(a, mu.login('carol'), 'carol-pw');
    assert.match(await a.cmd('STAT'), /^\+OK \d+ \d+$/);
    await a.quit();

    const b = await RawPop3.connect(mu.port);
    await b.line();
    await b.stls(ca);
    await login(b, mu.login('carol'), 'carol-pw');
    await b.quit();

    const c = await RawPop3.connect(mu.port);
    const stamp = /<[^>]+>/.exec(await c.line())![0];
    const digest = crypto.createHash('md5').update(stamp + 'carol-pw').digest('hex');
    assert.match(await c.cmd(`APOP ${mu.login('carol')} ${digest}`), /^\+OK/);
    await c.quit();

    const d = await RawPop3.connect(mu.port);
    const stamp2 = /<[^>]+>/.exec(await d.line())![0];
    const bad = crypto.createHash('md5').update(stamp2 + 'wrong').digest('hex');
    assert.match(await d.cmd(`APOP ${mu.login('carol')} ${bad}`), /^-ERR/);
    await d.quit();
  });

  test('maildir format and restart on the same ports', T, async () => {
    const md = await startMailutils({ format: 'maildir' });
    try {
      await md.deliverMany('alice', [makeMail({ subject: 'm1' }), makeMail({ subject: 'm2' })]);
      const port = md.port;
      await md.restart();
      assert.equal(md.port, port);
      const p = await RawPop3.connect(md.port);
      await p.line();
      await login(p, md.login('alice'), 'alice-secret-pw');
      assert.match(await p.cmd('STAT'), /^\+OK 2 \d+$/);
      assert.match(await p.cmd('TOP 2 0'), /^\+OK/);
      assert.ok((await p.multi()).includes('Subject: m2'));
      await p.quit();
    } finally {
      await md.stop();
    }
    assert.equal(await canConnect('127.0.0.1', md.port), false);
  });
});

describe('mosquitto', () => {
  test('pub/sub round trip on plain and TLS listeners; retained message survives restart; auth enforced', T, async () => {
    const mq = await startMosquitto({ tls: true, users: [{ user: 'agent', pass: 'agent-pw' }] });
    try {
      const auth = { username: 'agent', password: 'agent-pw' };
      const sub = await subscribe(mq.url, ['p2m/#'], auth);
      const pub = await mqtt.connectAsync(mq.tlsUrl!, { ...auth, ca: await readFile(mq.caFile!), reconnectPeriod: 0, connectTimeout: 5_000 });
      await pub.publishAsync('p2m/alert', JSON.stringify({ n: 1 }), { qos: 1 });
      await pub.publishAsync('p2m/state', 'online', { qos: 1, retain: true });
      await pub.endAsync();
      const got = await sub.waitFor((m) => m.topic === 'p2m/alert', 5_000);
      assert.deepEqual(got.json, { n: 1 });
      assert.equal(got.retain, false);
      await sub.waitForCount(2, 5_000);
      await sub.close();

      await assert.rejects(mqtt.connectAsync(mq.url, { username: 'agent', password: 'bad', reconnectPeriod: 0, connectTimeout: 5_000 }));

      const port = mq.port;
      await mq.restart();
      assert.equal(mq.port, port);
      const sub2 = await subscribe(mq.url, ['p2m/state'], auth);
      const retained = await sub2.waitFor((m) => m.topic === 'p2m/state', 5_000);
      assert.equal(retained.text, 'online');
      assert.equal(retained.retain, true);
      await sub2.close();
    } finally {
      await mq.stop();
    }
    assert.equal(await canConnect('127.0.0.1', mq.port), false);
  });

  test('kill() drops the broker at once; websockets listener works', T, async () => {
    const mq = await startMosquitto({ websockets: true, persistence: false });
    try {
      const sub = await subscribe(mq.wsUrl!, ['x/y']);
      const pub = await mqtt.connectAsync(mq.url, { reconnectPeriod: 0 });
      await pub.publishAsync('x/y', 'hi', { qos: 1 });
      assert.equal((await sub.waitFor(() => true, 5_000)).text, 'hi');
      const closed = new Promise<void>((r) => pub.once('close', () => r()));
      await mq.kill();
      await closed;
      assert.equal(await canConnect('127.0.0.1', mq.port), false);
      pub.end(true);
      await sub.close();
    } finally {
      await mq.stop();
    }
  });
});

describe('relay', () => {
  let dc: DovecotServer;
  before(async () => {
    dc = await startDovecot();
    await dc.deliver('alice', makeMail({ subject: 'relay me', body: 'x'.repeat(5_000) + '\n' }));
  });
  after(async () => {
    await dc?.stop();
  });

  test('counts bytes both ways per connection', T, async () => {
    const relay = await startRelay('127.0.0.1', dc.port);
    try {
      const p = await RawPop3.connect(relay.port);
      await p.line();
      await login(p, 'alice', 'alice-secret-pw');
      assert.match(await p.cmd('RETR 1'), /^\+OK/);
      await p.multi();
      await p.quit();
      const sent = 'USER alice\r\nPASS alice-secret-pw\r\nRETR 1\r\nQUIT\r\n'.length;
      const deadline = Date.now() + 2_000;
      while (relay.bytesFromServer < p.received && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(relay.connections, 1);
      assert.equal(relay.bytesToServer, sent);
      assert.equal(relay.bytesFromServer, p.received);
      assert.ok(relay.bytesFromServer > 5_000);
      assert.deepEqual(relay.connectionStats.map((c) => c.toServer), [sent]);
      const retr = (await dc.logoutLines({ atLeast: 1 })).filter((l) => l.retr === 1);
      assert.equal(retr.length, 1);
      assert.ok(retr[0]!.retrBytes > 5_000);
    } finally {
      await relay.close();
    }
  });

  test('cutAfterServerBytes relays exactly n bytes, then closes; once applies to one connection', T, async () => {
    const relay = await startRelay('127.0.0.1', dc.port);
    try {
      relay.cutAfterServerBytes(10, { once: true });
      const p = await RawPop3.connect(relay.port);
      await assert.rejects(p.line(3_000), /closed/);
      assert.equal(p.received, 10);
      assert.equal(relay.connectionStats[0]!.cut, true);

      const q = await RawPop3.connect(relay.port);
      assert.match(await q.line(), /^\+OK/);
      await q.quit();
      assert.equal(relay.connections, 2);
    } finally {
      await relay.close();
    }
  });

  test('pause holds data until resume', T, async () => {
    const relay = await startRelay('127.0.0.1', dc.port);
    try {
      relay.pause();
      const p = await RawPop3.connect(relay.port);
      await assert.rejects(p.line(300), /no line/);
      relay.resume();
      assert.match(await p.line(), /^\+OK/);
      await p.quit();
    } finally {
      await relay.close();
    }
  });
});

describe('sample mail', () => {
  test('makeMail builds CRLF MIME with RFC 2047 subject and base64 attachment that mailparser reads back', T, async () => {
    const jpeg = fakeJpeg(3000, 7);
    const raw = makeMail({
      from: 'NVR <nvr@example.test>',
      subject: 'Bewegung erkannt: Einfahrt – Kamera 2',
      date: new Date('2026-01-02T03:04:05Z'),
      messageId: '<fixed@example.test>',
      body: 'Motion at 03:04\n',
      headers: { 'X-Camera': 'driveway' },
      attachments: [{ filename: 'snap.jpg', contentType: 'image/jpeg', content: jpeg }],
    });
    assert.ok(!/[^\r]\n/.test(raw), 'only CRLF line ends');
    assert.ok(raw.split('\r\n').every((l) => l.length <= 998));
    const parsed = await simpleParser(raw);
    assert.equal(parsed.subject, 'Bewegung erkannt: Einfahrt – Kamera 2');
    assert.equal(parsed.messageId, '<fixed@example.test>');
    assert.equal(parsed.date?.toISOString(), '2026-01-02T03:04:05.000Z');
    assert.equal(parsed.headers.get('x-camera'), 'driveway');
    assert.equal(parsed.text?.trim(), 'Motion at 03:04');
    assert.equal(parsed.attachments.length, 1);
    assert.equal(parsed.attachments[0]!.filename, 'snap.jpg');
    assert.equal(parsed.attachments[0]!.contentType, 'image/jpeg');
    assert.ok(parsed.attachments[0]!.content.equals(jpeg));
    assert.equal(jpeg[0], 0xff);
    assert.equal(jpeg[1], 0xd8);
    assert.equal(jpeg.length, 3000);
  });
});
