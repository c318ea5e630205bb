// The POP3 client against real GNU Mailutils pop3d: USER and APOP over TLS and STLS, no SASL, and its X-UIDL header quirk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Pop3Client, type Pop3Options } from '../../src/pop3/index.js';
import { startMailutils, type MailutilsServer } from '../support/mailutils.js';
import { labClientOptions } from '../support/pop3-options.js';

const T = { timeout: 60_000 };
let mu: MailutilsServer;
let ca: string;
let login: string;
const PASS = 'alice-secret-pw';

before(async () => {
  mu = await startMailutils({ users: [{ user: 'alice', pass: PASS }] });
  ca = await readFile(mu.caFile, 'utf8');
  login = mu.login('alice');
});
after(async () => {
  await mu?.stop();
});

function opts(tls: Pop3Options['tls'], extra: Partial<Pop3Options> = {}): Pop3Options {
  return labClientOptions(mu, ca, tls, extra);
}

function mail(i: number): string {
  return `From: nas${i}@example.com\r\nSubject: UPS event ${i}\r\nMessage-ID: <ups-${i}@example.com>\r\n\r\nOn battery ${i}\r\n.dot line\r\n`;
}

test('USER and APOP over implicit TLS and STLS; no SASL, so auto picks USER and PLAIN is ENO_MECHANISM', T, async () => {
  await mu.deliverMany('alice', [mail(1), mail(2)]);
  for (const tls of ['implicit', 'starttls'] as const) {
    for (const mechanism of ['user', 'apop', 'auto'] as const) {
      const c = await Pop3Client.connect(opts(tls));
      assert.ok(c.tlsInfo?.authorized);
      assert.ok(c.apopTimestamp, 'greeting carries an APOP timestamp');
      assert.ok(c.capabilities?.has('USER'));
      assert.deepEqual(c.capabilities?.get('SASL'), undefined);
      if (mechanism === 'auto') {
        await assert.rejects(c.login({ username: login, password: PASS, mechanism: 'plain' }), { code: 'ENO_MECHANISM' });
      }
      const r = await c.login({ username: login, password: PASS, mechanism });
      assert.equal(r.mechanism, mechanism === 'auto' ? 'user' : mechanism, `${tls}/${mechanism}`);
      assert.equal((await c.stat()).count, 2);
      await c.quit();
    }
  }
});

test('wrong password is EAUTH; APOP over cleartext needs opt-in', T, async () => {
  const c = await Pop3Client.connect(opts('implicit'));
  await assert.rejects(c.login({ username: login, password: 'nope', mechanism: 'user' }), { code: 'EAUTH' });
  await c.quit();
  const c2 = await Pop3Client.connect(opts('none'));
  await assert.rejects(c2.login({ username: login, password: PASS }), { code: 'EINSECURE' });
  const r = await c2.login({ username: login, password: PASS, mechanism: 'apop', allowInsecureAuth: true });
  assert.equal(r.mechanism, 'apop');
  await c2.quit();
});

test('X-UIDL quirk: TOP/RETR carry an added X-UIDL header equal to the UIDL; RETR may exceed LIST size', T, async () => {
  const c = await Pop3Client.connect(opts('implicit'));
  await c.login({ username: login, password: PASS });
  const uids = await c.uidl();
  const sizes = await c.list();
  assert.equal(uids.size, sizes.size);
  const heads = await c.topMany([...uids.keys()], 0);
  for (const [n, uid] of uids) {
    const head = heads.get(n);
    assert.ok(Buffer.isBuffer(head));
    const m = /^X-UIDL: *(.+)$/im.exec(head.toString('latin1'));
    assert.ok(m, `TOP ${n} has X-UIDL`);
    assert.equal(m[1]!.trim(), uid);
    const full = await c.retr(n);
    assert.ok(full.toString('latin1').includes(`\r\n.dot line\r\n`), 'dot-stuffed line restored');
    assert.ok(full.length >= sizes.get(n)!, `RETR ${n}: ${full.length} bytes vs LIST ${sizes.get(n)}`);
    assert.ok(full.subarray(0, head.length).equals(head), 'TOP n 0 is the start of RETR');
  }
  await c.quit();
  // UIDLs are stable across sessions.
  const c2 = await Pop3Client.connect(opts('starttls'));
  await c2.login({ username: login, password: PASS });
  assert.deepEqual([...(await c2.uidl())], [...uids]);
  assert.deepEqual([...(await c2.uidlMany([...uids.keys()]))], [...uids]);
  await c2.quit();
});

test('pipelined and sequential TOP agree; DELE is committed by QUIT only', T, async () => {
  const run = async (pipelining: boolean) => {
    const c = await Pop3Client.connect(opts('implicit', { pipelining }));
    await c.login({ username: login, password: PASS });
    const { count } = await c.stat();
    const res = await c.topMany(Array.from({ length: count }, (_, i) => i + 1), 1);
    await c.quit();
    return [...res].map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v.code]);
  };
  assert.deepEqual(await run(true), await run(false));
  const c = await Pop3Client.connect(opts('implicit'));
  await c.login({ username: login, password: PASS });
  const before = (await c.stat()).count;
  await c.dele(1);
  c.destroy();
  const c2 = await Pop3Client.connect(opts('implicit'));
  await c2.login({ username: login, password: PASS });
  assert.equal((await c2.stat()).count, before, 'destroy without QUIT deleted nothing');
  await c2.dele(1);
  await c2.quit();
  const c3 = await Pop3Client.connect(opts('implicit'));
  await c3.login({ username: login, password: PASS });
  assert.equal((await c3.stat()).count, before - 1);
  await c3.quit();
});
