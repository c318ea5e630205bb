// The POP3 client against a real Dovecot: every mechanism over implicit TLS and STLS, every command, pipelining, TLS resumption, error mapping.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Pop3Client, Pop3Error, Pop3Memory, type AuthMechanism, type Pop3Options } from '../../src/pop3/index.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { labClientOptions } from '../support/pop3-options.js';

const T = { timeout: 60_000 };
let dove: DovecotServer;
let ca: string;

const ALICE = { user: 'alice', pass: 'alice-pw-Ünïcode' };
const BOB = { user: 'bob', pass: 'bob-pw' };
const CAROL = { user: 'carol', pass: 'carol-pw' };
const DAVE = { user: 'dave', pass: 'dave-pw' };

before(async () => {
  // Resumption needs one long-lived login process: with Dovecot's default service_count = 1 every
  // connection gets a fresh pop3-login process (new session cache, new ticket key) and nothing resumes.
  dove = await startDovecot({
    users: [ALICE, BOB, CAROL, DAVE],
    extraConf: 'service pop3-login {\n  service_count = 0\n  process_min_avail = 1\n  process_limit = 1\n}\n',
  });
  ca = await readFile(dove.caFile, 'utf8');
});
after(async () => {
  await dove?.stop();
});

function opts(tls: Pop3Options['tls'], extra: Partial<Pop3Options> = {}): Pop3Options {
  return labClientOptions(dove, ca, tls, extra);
}

function mail(i: number, body: string, extraHeaders = ''): string {
  return (
    `From: Camera ${i} <cam${i}@example.com>\r\nTo: alerts@example.com\r\nSubject: Motion ${i}\r\n` +
    `Message-ID: <motion-${i}@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:0${i % 10} +0000\r\n${extraHeaders}\r\n${body}`
  );
}

test('every mechanism Dovecot offers, over implicit TLS and over STLS', T, async () => {
  const mechs: AuthMechanism[] = ['user', 'apop', 'plain', 'login', 'cram-md5', 'scram-sha-1', 'scram-sha-256'];
  await dove.deliver(BOB.user, mail(1, 'hello\r\n'));
  for (const tls of ['implicit', 'starttls'] as const) {
    for (const mechanism of mechs) {
      const c = await Pop3Client.connect(opts(tls));
      assert.ok(c.tlsInfo?.authorized, `${tls}: TLS verified`);
      if (tls === 'starttls') assert.ok(!c.capabilities?.has('STLS'), 'CAPA re-read after STLS');
      const r = await c.login({ username: BOB.user, password: BOB.pass, mechanism });
      assert.equal(r.mechanism, mechanism);
      assert.equal(c.state, 'TRANSACTION');
      assert.ok(r.capabilities?.has('UIDL'), 'CAPA re-read after login');
      assert.ok(!r.capabilities?.has('SASL'), 'no SASL after login');
      assert.equal((await c.stat()).count, 1, `${tls}/${mechanism}`);
      await c.quit();
      assert.equal(c.state, 'CLOSED');
    }
  }
});

test('auto picks PLAIN inside TLS; SCRAM-SHA-256 on request; a non-ASCII password works with both', T, async () => {
  const c = await Pop3Client.connect(opts('implicit'));
  assert.ok(c.apopTimestamp, 'Dovecot announces APOP in the greeting');
  const r = await c.login({ username: ALICE.user, password: ALICE.pass });
  assert.equal(r.mechanism, 'plain');
  await c.quit();
  const c2 = await Pop3Client.connect(opts('implicit'));
  const r2 = await c2.login({ username: ALICE.user, password: ALICE.pass, mechanism: 'scram-sha-256' });
  assert.equal(r2.mechanism, 'scram-sha-256');
  await c2.quit();
});

test('cleartext connection: SCRAM without opt-in, USER/PLAIN refused unless allowed', T, async () => {
  const c1 = await Pop3Client.connect(opts('none'));
  assert.equal(c1.tlsInfo, null);
  await assert.rejects(c1.login({ username: BOB.user, password: BOB.pass, mechanism: 'user' }), { code: 'EINSECURE' });
  await assert.rejects(c1.login({ username: BOB.user, password: BOB.pass, mechanism: 'cram-md5' }), { code: 'EINSECURE' });
  const r = await c1.login({ username: BOB.user, password: BOB.pass });
  assert.equal(r.mechanism, 'scram-sha-256');
  await c1.quit();
  const c2 = await Pop3Client.connect(opts('none'));
  const r2 = await c2.login({ username: BOB.user, password: BOB.pass, mechanism: 'user', allowInsecureAuth: true });
  assert.equal(r2.mechanism, 'user');
  await c2.quit();
});

test('wrong password: -ERR [AUTH] maps to EAUTH (every mechanism)', T, async () => {
  for (const mechanism of ['user', 'apop', 'plain', 'login', 'cram-md5', 'scram-sha-1', 'scram-sha-256'] as const) {
    const c = await Pop3Client.connect(opts('implicit'));
    await assert.rejects(c.login({ username: BOB.user, password: 'wrong-password', mechanism }), (e: unknown) => {
      assert.ok(e instanceof Pop3Error);
      assert.equal(e.code, 'EAUTH', `${mechanism}: ${e.message}`);
      assert.equal(e.retry, 'backoff-hard');
      assert.equal(e.respCode, 'AUTH', `${mechanism}: ${e.serverText}`);
      return true;
    });
    assert.equal(c.state, 'AUTHORIZATION');
    await c.quit();
  }
});

test('STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP, QUIT', T, async () => {
  const bodies = [
    'line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n',
    'caf\xe9 8-bit\r\n\x00nul\r\n',
    'third\r\n',
  ];
  const raws = bodies.map((b, i) => Buffer.from(mail(i + 1, b), 'latin1'));
  await dove.deliverMany(CAROL.user, raws);
  const c = await Pop3Client.connect(opts('implicit'));
  await c.login({ username: CAROL.user, password: CAROL.pass });
  const stat = await c.stat();
  assert.equal(stat.count, 3);
  const list = await c.list();
  assert.deepEqual([...list.keys()], [1, 2, 3]);
  assert.equal(stat.size, [...list.values()].reduce((a, b) => a + b, 0));
  assert.equal(await c.list(2), list.get(2));
  assert.equal(await c.list(9), null);
  const uids = await c.uidl();
  assert.equal(uids.size, 3);
  assert.match(uids.get(1)!, /^[0-9a-fA-F]{16}$/);
  assert.equal(await c.uidl(3), uids.get(3));
  assert.equal(await c.uidl(9), null);
  assert.deepEqual([...(await c.uidlMany([1, 2, 3, 4]))], [[1, uids.get(1)], [2, uids.get(2)], [3, uids.get(3)], [4, null]]);
  for (let i = 1; i <= 3; i++) {
    const full = await c.retr(i);
    assert.deepEqual(full, raws[i - 1], `RETR ${i} is byte-exact`);
    assert.equal(full.length, list.get(i));
    const head = await c.top(i, 0);
    const sep = full.indexOf('\r\n\r\n');
    assert.deepEqual(head, full.subarray(0, sep + 4), `TOP ${i} 0 is the header block and the blank line`);
    const top1 = await c.top(i, 1);
    const firstLineEnd = full.indexOf('\r\n', sep + 4);
    assert.deepEqual(top1, full.subarray(0, firstLineEnd + 2));
  }
  const streamed: Buffer[] = [];
  for await (const ch of await c.retrStream(1)) streamed.push(ch as Buffer);
  assert.deepEqual(Buffer.concat(streamed), raws[0]);
  await assert.rejects(c.retr(9), { code: 'ERR' });
  await c.noop();
  await c.dele(1);
  await assert.rejects(c.retr(1), { code: 'ERR' });
  assert.equal((await c.stat()).count, 2);
  await c.rset();
  assert.equal((await c.stat()).count, 3);
  const dm = await c.deleMany([2, 7]);
  assert.equal(dm.get(2), null);
  assert.equal(dm.get(7)?.code, 'ERR');
  await c.quit();
  assert.equal(c.state, 'CLOSED');

  // Only what was DELEted in a session that QUIT is gone; a destroyed session deletes nothing.
  const c2 = await Pop3Client.connect(opts('starttls'));
  await c2.login({ username: CAROL.user, password: CAROL.pass });
  const after = await c2.uidl();
  assert.deepEqual([...after.values()], [uids.get(1), uids.get(3)]);
  await c2.dele(1);
  c2.destroy();
  const c3 = await Pop3Client.connect(opts('implicit'));
  await c3.login({ username: CAROL.user, password: CAROL.pass });
  assert.equal((await c3.stat()).count, 2);
  await c3.quit();
});

test('pipelined TOP of many messages equals the one-at-a-time path, with far fewer round trips', T, async () => {
  const n = 60;
  await dove.deliverMany(DAVE.user, Array.from({ length: n }, (_, i) => mail(i + 1, `body ${i + 1}\r\nsecond line\r\n`)));
  const before = (await dove.settled()).length;
  const run = async (pipelining: boolean) => {
    const c = await Pop3Client.connect(opts('implicit', { pipelining }));
    await c.login({ username: DAVE.user, password: DAVE.pass });
    const seen: number[] = [];
    const msgs = Array.from({ length: n }, (_, i) => i + 1);
    const t0 = c.stats.roundTrips;
    const tops = await c.topMany(msgs, 0, (m) => void seen.push(m));
    const trips = c.stats.roundTrips - t0;
    await c.quit();
    return { tops: [...tops].map(([k, v]) => [k, (v as Buffer).toString('latin1')]), seen, trips };
  };
  const a = await run(true);
  const b = await run(false);
  assert.deepEqual(a.tops, b.tops);
  assert.deepEqual(a.seen, Array.from({ length: n }, (_, i) => i + 1));
  assert.deepEqual(b.seen, a.seen);
  assert.ok(a.trips <= 2, `pipelined: ${a.trips} round trips`);
  assert.equal(b.trips, n);
  assert.match(a.tops[0]![1] as string, /^From: Camera 1 .*\r\n\r\n$/s);
  const lines = await dove.logoutLines({ atLeast: before + 2 });
  const mine = lines.slice(before).filter((l) => l.user === DAVE.user);
  assert.equal(mine.length, 2);
  for (const l of mine) assert.equal(l.top, n, 'Dovecot counted every TOP');
});

test('TLS session resumption: the second connection resumes', T, async () => {
  for (const tls of ['implicit', 'starttls'] as const) {
    // The client remembers each session with its certificate in the memory it is given (the agent keeps one).
    const memory = new Pop3Memory();
    const c1 = await Pop3Client.connect(opts(tls, { memory }));
    await c1.login({ username: BOB.user, password: BOB.pass });
    await c1.noop(); // TLS 1.3 tickets arrive after the handshake
    await c1.quit();
    const session = c1.tlsSession;
    assert.ok(session && session.length > 0, `${tls}: a session to resume`);
    assert.equal(c1.tlsInfo?.resumed, false);
    // The pin is checked on resumed sessions too (Node skips its own identity check there).
    const pin = c1.tlsInfo!.peerCertificate.fingerprint256;
    const c2 = await Pop3Client.connect(opts(tls, { memory, tlsSession: session, fingerprint: pin }));
    assert.equal(c2.tlsInfo?.resumed, true, `${tls}: resumed`);
    assert.equal(c2.tlsInfo?.peerCertificate.fingerprint256, pin);
    await assert.rejects(
      Pop3Client.connect(opts(tls, { memory, tlsSession: c2.tlsSession ?? session, fingerprint: 'AA'.repeat(32) })),
      { code: 'EFINGERPRINT' },
    );
    await c2.login({ username: BOB.user, password: BOB.pass });
    await c2.quit();
  }
});

test('a large message streams with backpressure and a byte cap errors the stream, session intact', T, async () => {
  const big = mail(7, Array.from({ length: 50_000 }, (_, i) => `${i} ${'x'.repeat(60)}`).join('\r\n') + '\r\n');
  await dove.deliverMany(ALICE.user, [big, mail(8, 'small\r\n')]);
  const c = await Pop3Client.connect(opts('implicit'));
  await c.login({ username: ALICE.user, password: ALICE.pass });
  const stream = await c.retrStream(1);
  let total = 0;
  for await (const ch of stream) {
    total += (ch as Buffer).length;
    if (total % 7 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(total, Buffer.byteLength(big));
  const capped = await c.retrStream(1, { maxBytes: 100_000 });
  const err = await new Promise<unknown>((resolve) => {
    capped.on('error', resolve);
    capped.on('end', () => resolve(null));
    capped.resume();
  });
  assert.ok(err instanceof Pop3Error && err.code === 'ELIMIT');
  assert.match((await c.retr(2)).toString(), /Subject: Motion 8/);
  await c.quit();
});
