// Fault tests of the POP3 client against a scripted hostile peer: every misbehaviour ends in the right typed error, in time, without leaks.
import { prng } from '../support/prng.js';
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { MAX_MECHANISM_ATTEMPTS, Pop3Client, Pop3Error, serverKeyOf, type Pop3Options, type Pop3ErrorCode, type ServerFacts, Pop3Memory } from '../../src/pop3/index.js';
import { makeExpiredCert, makeTestCA, makeWrongNameCert, type TestCerts } from '../support/certs.js';
import { freePort } from '../support/ports.js';
import {
  message,
  serveMailbox,
  startHostilePop3,
  tlsMaterial,
  type HostileServer,
  type PeerConn,
  type TlsMaterial,
} from '../support/hostile-pop3.js';
import { sleep } from '../support/wait.js';

const T = { timeout: 20_000 };

// ---- harness: unhandled rejections and leaked handles fail the test ----

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
let baseline: Map<string, number>;
const servers: HostileServer[] = [];

function resources(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

async function assertNoLeaks(): Promise<void> {
  const deadline = Date.now() + 3000;
  let now = resources();
  const leaked = () =>
    ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'].filter((k) => (now.get(k) ?? 0) > (baseline.get(k) ?? 0));
  while (leaked().length > 0 && Date.now() < deadline) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20).unref());
    now = resources();
  }
  assert.deepEqual(leaked(), [], `leaked handles: ${JSON.stringify([...now])} vs baseline ${JSON.stringify([...baseline])}`);
}

before(() => {
  process.on('unhandledRejection', onUnhandled);
});
after(() => {
  process.removeListener('unhandledRejection', onUnhandled);
});
beforeEach(() => {
  unhandled.length = 0;
  baseline = resources();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(unhandled, [], 'unhandled rejections');
  await assertNoLeaks();
});

async function peer(script: (c: PeerConn) => Promise<void>, o: { implicitTls?: TlsMaterial } = {}): Promise<HostileServer> {
  const s = await startHostilePop3(script, o);
  servers.push(s);
  return s;
}

function opts(port: number, extra: Partial<Pop3Options> = {}): Pop3Options {
  return { host: '127.0.0.1', port, tls: 'none', timeouts: { connectMs: 2000, greetingMs: 2000, commandMs: 2000, sessionMs: 10_000 }, ...extra };
}

/** Assert `p` rejects with a Pop3Error of `code` and return it with the time it took. */
async function rejectsWith(p: Promise<unknown>, code: Pop3ErrorCode): Promise<{ err: Pop3Error; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (e) {
    const ms = Date.now() - t0;
    assert.ok(e instanceof Pop3Error, `expected Pop3Error, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return { err: e, ms };
  }
  assert.fail(`expected rejection with ${code}`);
}

async function loggedIn(port: number, extra: Partial<Pop3Options> = {}): Promise<Pop3Client> {
  const c = await Pop3Client.connect(opts(port, extra));
  await c.login({ username: 'user', password: 'pass', allowInsecureAuth: true });
  return c;
}

// ---- certificates ----

let dir: string;
let good: TestCerts;
let expired: TestCerts;
let wrongName: TestCerts;
let untrusted: TestCerts;
let ca: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pop3-hostile-'));
  good = await makeTestCA(path.join(dir, 'a'));
  expired = await makeExpiredCert(path.join(dir, 'a'));
  wrongName = await makeWrongNameCert(path.join(dir, 'a'));
  untrusted = await makeTestCA(path.join(dir, 'b'));
  ca = await readFile(good.caFile, 'utf8');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---- greeting and connect ----

test('garbage greeting -> EPROTOCOL', T, async () => {
  const s = await peer(async (c) => c.write('SSH-2.0-OpenSSH_9.2\r\n'));
  await rejectsWith(Pop3Client.connect(opts(s.port)), 'EPROTOCOL');
});

test('-ERR greeting with response code maps to the typed error', T, async () => {
  const s = await peer(async (c) => c.write('-ERR [SYS/TEMP] overloaded, try later\r\n'));
  const { err } = await rejectsWith(Pop3Client.connect(opts(s.port)), 'ESYS_TEMP');
  assert.equal(err.retry, 'later');
  assert.equal(err.respCode, 'SYS/TEMP');
});

test('greeting never comes -> ETIMEOUT at the greeting deadline', T, async () => {
  const s = await peer(async (c) => void (await c.waitClosed(10_000)));
  const { ms } = await rejectsWith(Pop3Client.connect(opts(s.port, { timeouts: { greetingMs: 300 } })), 'ETIMEOUT');
  assert.ok(ms >= 250 && ms < 2000, `took ${ms} ms`);
});

test('greeting trickled one byte at a time cannot extend the greeting deadline', T, async () => {
  const s = await peer(async (c) => c.trickle('+OK ' + 'x'.repeat(200) + '\r\n', 1, 50));
  const { ms } = await rejectsWith(Pop3Client.connect(opts(s.port, { timeouts: { greetingMs: 400 } })), 'ETIMEOUT');
  assert.ok(ms >= 350 && ms < 2000, `took ${ms} ms`);
});

test('connection refused -> ECONNECT', T, async () => {
  const port = await freePort();
  await rejectsWith(Pop3Client.connect(opts(port)), 'ECONNECT');
});

test('implicit TLS to a peer that never handshakes -> ETIMEOUT at the connect deadline', T, async () => {
  const s = await peer(async (c) => void (await c.waitClosed(10_000)));
  const { ms } = await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, timeouts: { connectMs: 300 } })), 'ETIMEOUT');
  assert.ok(ms >= 250 && ms < 2000, `took ${ms} ms`);
});

test('abort signal ends the session with EABORTED, pending commands included', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: (_c, verb) => verb === 'NOOP' || verb === 'STAT', // never answers
    });
  });
  const ac = new AbortController();
  const c = await loggedIn(s.port, { signal: ac.signal });
  const p = c.noop();
  const q = c.stat();
  setTimeout(() => ac.abort(), 50);
  await rejectsWith(p, 'EABORTED');
  await rejectsWith(q, 'EABORTED');
  assert.equal(c.state, 'CLOSED');
});

// ---- -ERR everywhere ----

test('-ERR to everything: typed errors, the session stays usable', T, async () => {
  const s = await peer(async (c) => {
    c.write('+OK hi\r\n');
    for (;;) {
      const l = await c.readLine().catch(() => null);
      if (l === null) return;
      if (l === 'QUIT') return c.end('+OK\r\n');
      if (l.startsWith('PASS')) c.write('+OK in\r\n');
      else if (l.startsWith('USER')) c.write('+OK\r\n');
      else c.write('-ERR no way\r\n');
    }
  });
  const c = await Pop3Client.connect(opts(s.port));
  assert.equal(c.capabilities, null, 'CAPA -ERR means an RFC 1939 server');
  await c.login({ username: 'user', password: 'pass', allowInsecureAuth: true });
  await rejectsWith(c.stat(), 'ERR');
  await rejectsWith(c.list(), 'ERR');
  assert.equal(await c.list(1), null);
  await rejectsWith(c.uidl(), 'ERR');
  assert.equal(await c.uidl(1), null);
  assert.deepEqual([...(await c.uidlMany([1, 2]))], [[1, null], [2, null]]);
  await rejectsWith(c.top(1, 0), 'ERR');
  await rejectsWith(c.retr(1), 'ERR');
  await rejectsWith(c.retrStream(1), 'ERR');
  await rejectsWith(c.dele(1), 'ERR');
  const dm = await c.deleMany([1, 2]);
  assert.equal(dm.get(1)?.code, 'ERR');
  await rejectsWith(c.rset(), 'ERR');
  await rejectsWith(c.noop(), 'ERR');
  assert.equal(c.state, 'TRANSACTION');
  await c.quit();
  assert.equal(c.state, 'CLOSED');
});

test('RESP-CODES and AUTH-RESP-CODE map to typed errors with retry hints', T, async () => {
  const cases: Array<[string, Pop3ErrorCode, string]> = [
    ['-ERR [IN-USE] maildrop locked', 'EIN_USE', 'later'],
    ['-ERR [LOGIN-DELAY] wait 10 minutes', 'ELOGIN_DELAY', 'later'],
    ['-ERR [SYS/TEMP] disk busy', 'ESYS_TEMP', 'later'],
    ['-ERR [SYS/PERM] mailbox corrupt', 'ESYS_PERM', 'never'],
    ['-ERR [AUTH] invalid credentials', 'EAUTH', 'backoff-hard'],
    ['-ERR invalid credentials', 'EAUTH', 'backoff-hard'],
    ['-ERR [SYS/TEMP/QUOTA] vendor extension', 'ESYS_TEMP', 'later'],
  ];
  for (const [reply, code, retry] of cases) {
    const s = await peer(async (c) => {
      await serveMailbox(c, {
        handle: (cc, verb) => {
          if (verb !== 'PASS') return false;
          cc.write(reply + '\r\n');
          return true;
        },
      });
    });
    const c = await Pop3Client.connect(opts(s.port));
    const { err } = await rejectsWith(c.login({ username: 'user', password: 'pass', allowInsecureAuth: true }), code);
    assert.equal(err.retry, retry, reply);
    assert.equal(err.serverText, reply.slice(5));
    await c.quit();
  }
});

test('[LOGIN-DELAY] carries the delay the CAPA announced (retryAfterSec); none announced, none carried', T, async () => {
  for (const [capa, want] of [[['USER', 'RESP-CODES', 'LOGIN-DELAY 900'], 900], [['USER', 'RESP-CODES'], undefined]] as const) {
    const s = await peer(async (c) => {
      await serveMailbox(c, {
        capa: [...capa],
        handle: (cc, verb) => {
          if (verb !== 'PASS') return false;
          cc.write('-ERR [LOGIN-DELAY] too soon\r\n');
          return true;
        },
      });
    });
    const c = await Pop3Client.connect(opts(s.port));
    const { err } = await rejectsWith(c.login({ username: 'user', password: 'pass', allowInsecureAuth: true }), 'ELOGIN_DELAY');
    assert.equal(err.retryAfterSec, want, capa.join(' '));
    await c.quit();
  }
});

test('server text in errors never contains the password', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: (cc, verb, args) => {
        if (verb !== 'PASS') return false;
        cc.write(`-ERR [AUTH] bad password ${args[0]}\r\n`);
        return true;
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port));
  const { err } = await rejectsWith(c.login({ username: 'user', password: 'hunter2-secret', allowInsecureAuth: true }), 'EAUTH');
  assert.ok(!err.message.includes('hunter2-secret'), err.message);
  assert.ok(!err.serverText!.includes('hunter2-secret'), err.serverText);
  c.destroy();
});

// ---- broken multi-line replies ----

test('connection closed in the middle of a multi-line reply -> ECLOSED for it and everything queued', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: [message('a', 'x\r\n')],
      handle: (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\nSubject: half\r\n');
        setTimeout(() => cc.destroy(), 30);
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  const p = c.retr(1);
  const q = c.noop();
  await rejectsWith(p, 'ECLOSED');
  await rejectsWith(q, 'ECLOSED');
  assert.equal(c.state, 'CLOSED');
  await rejectsWith(c.stat(), 'ECLOSED');
});

test('missing terminator then close -> ECLOSED (not a truncated success)', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: [message('a', 'x\r\n')],
      handle: (cc, verb) => {
        if (verb !== 'TOP') return false;
        cc.end('+OK\r\nSubject: a\r\n\r\n');
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  await rejectsWith(c.top(1, 0), 'ECLOSED');
});

test('a 10 MB line inside a reply fails that command alone (ELIMIT), read to its end without buffering it; the session goes on', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: [message('a', 'x\r\n')],
      handle: async (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\n');
        const chunk = Buffer.alloc(1024 * 1024, 0x61);
        for (let i = 0; i < 10 && cc.isOpen; i++) {
          cc.write(chunk);
          await sleep(5);
        }
        cc.write('\r\n.\r\n');
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  const { err } = await rejectsWith(c.retr(1), 'ELIMIT');
  assert.match(err.message, /RETR 1: line longer than 65536 bytes; the rest of the reply was read and dropped/);
  assert.ok(c.stats.bytesIn > 10 * 1024 * 1024, 'the reply was read to its end');
  assert.equal(c.state, 'TRANSACTION');
  assert.equal(c.fatalError, null);
  assert.equal((await c.top(1, 0)).toString(), 'From: cam@example.com\r\nSubject: a\r\nMessage-ID: <a@x>\r\n\r\n');
  await c.quit();
});

test('an over-long data line that never ends -> ETIMEOUT at the command deadline (dropping it is no progress)', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: async (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\n');
        for (let i = 0; i < 400 && cc.isOpen; i++) {
          cc.write(Buffer.alloc(8192, 0x62));
          await sleep(10);
        }
        return true;
      },
    });
  });
  const c = await loggedIn(s.port, { timeouts: { commandMs: 500, sessionMs: 15_000 } });
  await rejectsWith(c.retr(1), 'ETIMEOUT');
  assert.match(c.fatalError!.message, /no complete reply line/);
});

test('a huge status line is ELIMIT too', T, async () => {
  const s = await peer(async (c) => {
    c.write('+OK ' + 'g'.repeat(200_000) + '\r\n');
    await c.waitClosed();
  });
  await rejectsWith(Pop3Client.connect(opts(s.port)), 'ELIMIT');
});

test('multi-line reply over maxReplyBytes -> ELIMIT for that command; the session goes on', T, async () => {
  const big = Buffer.from(('y'.repeat(998) + '\r\n').repeat(2048)); // ~2 MB
  const s = await peer(async (c) => {
    await serveMailbox(c, { messages: [Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), big]), message('b', 'small\r\n')] });
  });
  const c = await loggedIn(s.port, { limits: { maxReplyBytes: 1024 * 1024 } });
  const { err } = await rejectsWith(c.retr(1), 'ELIMIT');
  assert.match(err.message, /larger than 1048576/);
  assert.equal(c.state, 'TRANSACTION');
  assert.equal((await c.retr(2)).toString(), message('b', 'small\r\n').toString());
  await c.quit();
});

test('retr maxBytes: a larger message is ELIMIT but the session stays usable', T, async () => {
  const big = Buffer.from('Subject: big\r\n\r\n' + ('z'.repeat(98) + '\r\n').repeat(100));
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: [big, message('small', 'ok\r\n')] })));
  const c = await loggedIn(s.port);
  await rejectsWith(c.retr(1, { maxBytes: 1000 }), 'ELIMIT');
  assert.equal((await c.retr(2, { maxBytes: 1000 })).toString(), message('small', 'ok\r\n').toString());
  const stream = await c.retrStream(1, { maxBytes: 1000 });
  const streamErr = await new Promise<unknown>((resolve) => {
    stream.on('error', resolve);
    stream.on('end', () => resolve(null));
    stream.resume();
  });
  assert.ok(streamErr instanceof Pop3Error && streamErr.code === 'ELIMIT');
  assert.deepEqual(await c.stat(), { count: 2, size: big.length + message('small', 'ok\r\n').length });
  await c.quit();
});

test('NUL and 8-bit bytes pass through RETR, TOP and retrStream untouched', T, async () => {
  const raw = Buffer.concat([Buffer.from('Subject: bin\r\n\r\n'), Buffer.from([0, 1, 0xff, 0x80, 0xe9, 0x0d, 0x41]), Buffer.from('\r\n.leading dot\r\n')]);
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: [raw] })));
  const c = await loggedIn(s.port);
  assert.deepEqual(await c.retr(1), raw);
  assert.deepEqual(await c.top(1, 5), raw);
  const chunks: Buffer[] = [];
  for await (const ch of await c.retrStream(1)) chunks.push(ch as Buffer);
  assert.deepEqual(Buffer.concat(chunks), raw);
  await c.quit();
});

test('a lone "." the server forgot to stuff ends the reply; what follows is EPROTOCOL', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: [message('a', 'x\r\n')],
      handle: (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\nSubject: a\r\n\r\nbefore\r\n.\r\nafter the bad dot\r\n.\r\n');
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  const first = await c.retr(1);
  assert.equal(first.toString(), 'Subject: a\r\n\r\nbefore\r\n');
  await sleep(100);
  assert.equal(c.state, 'CLOSED');
  assert.equal(c.fatalError?.code, 'EPROTOCOL');
  await rejectsWith(c.noop(), 'ECLOSED');
});

test('a reply to a command never sent -> EPROTOCOL, session closed', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: (cc, verb) => {
        if (verb !== 'NOOP') return false;
        cc.write('+OK\r\n+OK and another one\r\n');
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  await c.noop();
  await sleep(100);
  assert.equal(c.state, 'CLOSED');
  assert.equal(c.fatalError?.code, 'EPROTOCOL');
});

test('unsolicited data while idle -> EPROTOCOL', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: (cc, verb) => {
        if (verb !== 'STAT') return false;
        cc.write('+OK 0 0\r\n');
        setTimeout(() => cc.write('* surprise\r\n'), 50);
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  await c.stat();
  await sleep(200);
  assert.equal(c.fatalError?.code, 'EPROTOCOL');
});

// ---- deadlines against slow and silent servers ----

test('accept-and-hang after a command -> ETIMEOUT at the command deadline', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { handle: (_c, verb) => verb === 'STAT' })));
  const c = await loggedIn(s.port, { timeouts: { commandMs: 300, sessionMs: 10_000 } });
  const { ms } = await rejectsWith(c.stat(), 'ETIMEOUT');
  assert.ok(ms >= 250 && ms < 2000, `took ${ms} ms`);
  assert.equal(c.state, 'CLOSED');
});

test('slow-loris status line (one byte per 50 ms, never a line end in time) -> ETIMEOUT at the command deadline', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: async (cc, verb) => {
        if (verb !== 'STAT') return false;
        await cc.trickle('+OK 1 ' + '1'.repeat(100) + '\r\n', 1, 50);
        return true;
      },
    });
  });
  const c = await loggedIn(s.port, { timeouts: { commandMs: 400, sessionMs: 10_000 } });
  const { ms } = await rejectsWith(c.stat(), 'ETIMEOUT');
  assert.ok(ms >= 350 && ms < 2000, `took ${ms} ms`);
});

test('slow-loris data lines (each line in time) are cut off by the session deadline', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: async (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\n');
        for (let i = 0; i < 200 && cc.isOpen; i++) {
          cc.write(`line ${i}\r\n`);
          await sleep(50);
        }
        cc.write('.\r\n');
        return true;
      },
    });
  });
  const started = Date.now();
  const c = await loggedIn(s.port, { timeouts: { commandMs: 1000, sessionMs: 1200 } });
  await rejectsWith(c.retr(1), 'ETIMEOUT');
  const total = Date.now() - started;
  assert.ok(total >= 1100 && total < 3000, `session lasted ${total} ms`);
  assert.match(c.fatalError!.message, /session deadline/);
});

// ---- STLS ----

test('starttls when STLS is not offered -> ESTLS_UNAVAILABLE, nothing sent in cleartext', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { capa: ['USER', 'TOP', 'UIDL'] })));
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'starttls', ca })), 'ESTLS_UNAVAILABLE');
  await s.settled();
  assert.deepEqual(s.conns[0]!.received, ['CAPA']);
});

test('starttls against a server without CAPA -> ESTLS_UNAVAILABLE', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { capa: null })));
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'starttls', ca })), 'ESTLS_UNAVAILABLE');
});

test('STLS offered but refused -> ESTLS_UNAVAILABLE', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { capa: ['STLS', 'USER'] })));
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'starttls', ca })), 'ESTLS_UNAVAILABLE');
});

test('STLS reply followed by injected plaintext -> ESTLS_INJECTION', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['STLS', 'USER'],
      handle: (cc, verb) => {
        if (verb !== 'STLS') return false;
        cc.write('+OK begin TLS\r\n+OK injected reply to the CAPA the client will send\r\n');
        return true;
      },
    });
  });
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'starttls', ca })), 'ESTLS_INJECTION');
});

test('STLS accepted but no handshake: connect deadline, or the session deadline if sooner -> ETIMEOUT', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['STLS', 'USER'],
      handle: async (cc, verb) => {
        if (verb !== 'STLS') return false;
        cc.write('+OK go ahead\r\n');
        await cc.waitClosed(10_000);
        return true;
      },
    });
  });
  const a = await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'starttls', ca, timeouts: { connectMs: 300, sessionMs: 10_000 } })), 'ETIMEOUT');
  assert.ok(a.ms >= 250 && a.ms < 2000, `took ${a.ms} ms`);
  const b = await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'starttls', ca, timeouts: { connectMs: 5000, sessionMs: 400 } })), 'ETIMEOUT');
  assert.ok(b.ms >= 350 && b.ms < 2000, `took ${b.ms} ms`);
  assert.match(b.err.message, /session deadline/);
});

test('STLS works, and capabilities are read again after the handshake (pre-TLS ones are not trusted)', T, async () => {
  const mat = tlsMaterial(good);
  const s = await peer(async (c) => {
    let upgraded = false;
    await serveMailbox(c, {
      messages: [message('a', 'hello\r\n')],
      tlsForStls: mat,
      handle: async (cc, verb) => {
        if (verb === 'STLS') {
          cc.write('+OK go\r\n');
          await cc.startTls(mat);
          upgraded = true;
          return true;
        }
        if (verb !== 'CAPA') return false;
        cc.write(upgraded ? '+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n' : '+OK\r\nSTLS\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n');
        return true;
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port, { tls: 'starttls', ca, servername: 'localhost' }));
  assert.equal(c.secure, true);
  assert.ok(c.tlsInfo && /^TLSv1\.[23]$/.test(c.tlsInfo.protocol));
  assert.deepEqual(c.capabilities?.lines, ['USER', 'TOP', 'UIDL']);
  assert.deepEqual(c.capabilitiesBeforeTls?.lines, ['STLS', 'SASL PLAIN', 'PIPELINING']);
  const r = await c.login({ username: 'user', password: 'pass' });
  assert.equal(r.mechanism, 'user', 'TLS allows USER without opt-in; spoofed pre-TLS SASL PLAIN is ignored');
  assert.equal((await c.top(1, 0)).toString(), 'From: cam@example.com\r\nSubject: a\r\nMessage-ID: <a@x>\r\n\r\n');
  await c.quit();
});

// ---- certificates ----

async function tlsPeer(material: TlsMaterial): Promise<HostileServer> {
  return peer(async (c) => void (await serveMailbox(c, {})), { implicitTls: material });
}

test('implicit TLS with a trusted certificate works; tlsInfo is filled', T, async () => {
  const s = await tlsPeer(tlsMaterial(good));
  const c = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca }));
  assert.equal(c.tlsInfo?.authorized, true);
  assert.match(c.tlsInfo!.peerCertificate.subject, /CN=localhost/);
  assert.match(c.tlsInfo!.peerCertificate.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  await c.quit();
});

test('untrusted certificate (unknown CA) -> ECERT, implicit and STLS', T, async () => {
  const s = await tlsPeer(tlsMaterial(untrusted));
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca })), 'ECERT');
  const mat = tlsMaterial(untrusted);
  const s2 = await peer(async (c) => void (await serveMailbox(c, { capa: ['STLS', 'USER'], tlsForStls: mat })));
  await rejectsWith(Pop3Client.connect(opts(s2.port, { tls: 'starttls', ca })), 'ECERT');
});

test('expired certificate -> ECERT', T, async () => {
  const s = await tlsPeer(tlsMaterial(expired));
  const { err } = await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca })), 'ECERT');
  assert.match(err.message, /expired/i);
});

test('certificate for another name -> ECERT; servername selects the name checked', T, async () => {
  const s = await tlsPeer(tlsMaterial(wrongName));
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca })), 'ECERT');
  const c = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, servername: 'wrong.example.invalid' }));
  await c.quit();
});

test('fingerprint pin: mismatch -> EFINGERPRINT; match (any case, colons optional) connects', T, async () => {
  const s = await tlsPeer(tlsMaterial(good));
  const fp = new X509Certificate(await readFile(good.certFile)).fingerprint256;
  const wrong = createHash('sha256').update('other').digest('hex');
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, fingerprint: wrong })), 'EFINGERPRINT');
  const c1 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, fingerprint: fp.toLowerCase() }));
  await c1.quit();
  const c2 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, fingerprint: fp.replace(/:/g, '') }));
  await c2.quit();
});

test('a pin does not replace chain verification: pinned but untrusted -> ECERT', T, async () => {
  const s = await tlsPeer(tlsMaterial(untrusted));
  const fp = new X509Certificate(await readFile(untrusted.certFile)).fingerprint256;
  await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, fingerprint: fp })), 'ECERT');
});

test('minTlsVersion TLSv1.3 against a TLS 1.2-only server -> ETLS', T, async () => {
  const mat = tlsMaterial(good);
  const s = await peer(async (c) => void (await serveMailbox(c, {})), { implicitTls: { ...mat, maxVersion: 'TLSv1.2' } });
  const { err } = await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, minTlsVersion: 'TLSv1.3' })), 'ETLS');
  assert.equal(err.retry, 'backoff-hard', 'a negotiation failure will not fix itself');
});

test('connection dropped during the TLS handshake -> ETLS, retried at the next poll', T, async () => {
  const s = await peer(async (c) => {
    // Read the ClientHello, then hang up.
    await new Promise((r) => c.socket.once('data', r));
    c.destroy();
  });
  const { err } = await rejectsWith(Pop3Client.connect(opts(s.port, { tls: 'implicit', ca })), 'ETLS');
  assert.equal(err.retry, 'next-poll');
});

// ---- economy on resumption: lean hello and remembered capabilities, and their fall-backs ----

test('a server that refuses the lean resumption hello gets the full one at once, and from then on; TLS 1.3 switched off too', T, async () => {
  const memory = new Pop3Memory();
  const mat = tlsMaterial(good);
  // A TLS 1.3 server whose only key-exchange group (P-521) is not in the lean hello.
  const p521 = { ...mat, secureContext: tls.createSecureContext({ key: mat.key, cert: mat.cert, ecdhCurve: 'P-521' }) };
  const s = await peer(async (c) => void (await serveMailbox(c, {})), { implicitTls: p521 });
  const c1 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory }));
  assert.equal(c1.tlsInfo?.protocol, 'TLSv1.3');
  await c1.quit();
  assert.equal(s.conns.length, 1);
  const c2 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory, tlsSession: c1.tlsSession! }));
  assert.equal(c2.tlsInfo?.protocol, 'TLSv1.3');
  await c2.quit();
  assert.equal(s.conns.length, 3, 'the lean hello refused, then a full handshake on a new connection');
  const c3 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory, tlsSession: c2.tlsSession! }));
  assert.equal(c3.tlsInfo?.resumed, true, 'the full hello resumes the session');
  await c3.quit();
  assert.equal(s.conns.length, 4, 'no second lean attempt at a server that refused it');

  // TLS 1.3 switched off since the session was made.
  const s13 = await tlsPeer(mat);
  const c4 = await Pop3Client.connect(opts(s13.port, { tls: 'implicit', ca, memory }));
  await c4.quit();
  const s12 = await peer(async (c) => void (await serveMailbox(c, {})), { implicitTls: { ...mat, maxVersion: 'TLSv1.2' } });
  const c5 = await Pop3Client.connect(opts(s12.port, { tls: 'implicit', ca, memory, tlsSession: c4.tlsSession! }));
  assert.equal(c5.tlsInfo?.protocol, 'TLSv1.2');
  await c5.quit();
  assert.equal(s12.conns.length, 2);

  // STLS cannot retry on the spent socket: that session fails, and the next one sends the full hello.
  const stls13 = await peer(async (c) => void (await serveMailbox(c, { capa: ['STLS', 'USER', 'TOP', 'UIDL'], tlsForStls: mat })));
  const c7 = await Pop3Client.connect(opts(stls13.port, { tls: 'starttls', ca, memory }));
  await c7.quit();
  assert.equal(c7.tlsInfo?.protocol, 'TLSv1.3');
  const stls12 = await peer(async (c) => void (await serveMailbox(c, { capa: ['STLS', 'USER', 'TOP', 'UIDL'], tlsForStls: { ...mat, maxVersion: 'TLSv1.2' } })));
  await rejectsWith(Pop3Client.connect(opts(stls12.port, { tls: 'starttls', ca, memory, tlsSession: c7.tlsSession! })), 'ETLS');
  const c6 = await Pop3Client.connect(opts(stls12.port, { tls: 'starttls', ca, memory, tlsSession: c7.tlsSession! }));
  assert.equal(c6.tlsInfo?.protocol, 'TLSv1.2');
  await c6.quit();
});

test('remembered capabilities gone stale: a code-less AUTH refusal reads CAPA afresh and logs in with the new choice; [AUTH] does not', T, async () => {
  const memory = new Pop3Memory();
  const mat = tlsMaterial(good);
  const shared = { ...mat, secureContext: tls.createSecureContext({ key: mat.key, cert: mat.cert }) };
  let conn = 0;
  const s = await peer(async (c) => {
    conn++;
    // Connection 1 offers SASL PLAIN; later ones withdrew it (USER only), and connection 3 has a new password.
    const plainOffered = conn === 1;
    await serveMailbox(c, {
      capa: ['USER', 'TOP', 'UIDL', 'RESP-CODES', ...(plainOffered ? ['SASL PLAIN'] : [])],
      pass: conn === 3 ? 'changed' : 'pass',
      handle: (p, verb, _args, st) => {
        if (verb !== 'AUTH') return false;
        if (plainOffered) {
          st.loggedIn = true;
          p.write('+OK logged in\r\n');
        } else p.write('-ERR Unsupported authentication mechanism.\r\n');
        return true;
      },
    });
  }, { implicitTls: shared });
  const c1 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory }));
  assert.equal((await c1.login({ username: 'user', password: 'pass' })).mechanism, 'plain');
  await c1.quit();

  const c2 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory, tlsSession: c1.tlsSession! }));
  assert.equal(c2.tlsInfo?.resumed, true);
  assert.ok(c2.capabilities?.saslMechanisms.includes('PLAIN'), 'remembered, not asked');
  assert.equal((await c2.login({ username: 'user', password: 'pass' })).mechanism, 'user');
  await c2.quit();
  assert.deepEqual(s.conns[1]!.received.slice(0, 4).map((l) => l.split(' ')[0]), ['AUTH', 'CAPA', 'USER', 'PASS']);

  // The fresh CAPA is remembered: the next resumed session goes straight to USER; a wrong password is one refusal.
  const c3 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory, tlsSession: c2.tlsSession! }));
  assert.equal(c3.tlsInfo?.resumed, true);
  await rejectsWith(c3.login({ username: 'user', password: 'pass' }), 'EAUTH');
  c3.destroy();
  assert.deepEqual(s.conns[2]!.received.map((l) => l.split(' ')[0]), ['USER', 'PASS'], 'no CAPA, no second try');
});

test('nothing is pipelined behind AUTH (Cyrus and Courier reset their input after authentication); STAT and UIDL n go out together after its reply, resumed or not', T, async () => {
  const memory = new Pop3Memory();
  const mat = tlsMaterial(good);
  const shared = { ...mat, secureContext: tls.createSecureContext({ key: mat.key, cert: mat.cert }) };
  const msgs = [message('a', 'x'), message('b', 'y')];
  const violations: string[] = [];
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['USER', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'SASL PLAIN'],
      messages: msgs,
      handle: async (p, verb, _args, st) => {
        if (verb !== 'AUTH') return false;
        // Like Cyrus pop3d: anything that arrived behind AUTH would be dropped when the SASL layer resets the input.
        await sleep(40);
        if (p.pendingBytes > 0) violations.push(`${p.pendingBytes} bytes behind AUTH`);
        st.loggedIn = true;
        p.write('+OK logged in\r\n');
        return true;
      },
    });
  }, { implicitTls: shared });
  const login = { username: 'user', password: 'pass', capaAfterLogin: false };
  let session: Buffer | undefined;
  for (let i = 0; i < 5; i++) {
    const c = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory, tlsSession: session }));
    assert.equal(c.tlsInfo?.resumed, i > 0, `session ${i}`);
    const rt = c.stats.roundTrips;
    const r = await c.loginAndStat(login, 2);
    assert.equal(c.stats.roundTrips - rt, 2, 'AUTH alone, then STAT and UIDL n in one write');
    assert.deepEqual([r.mechanism, r.stat.count, r.probeUid], ['plain', 2, 'uid-2']);
    await c.quit();
    session = c.tlsSession!;
  }
  await s.settled();
  assert.deepEqual(violations, []);
  for (const c of s.conns) assert.deepEqual(c.received.filter((l) => !l.startsWith('CAPA')).map((l) => l.split(' ')[0]), ['AUTH', 'STAT', 'UIDL', 'QUIT']);
  // Without PIPELINING the probe is left to the caller, who may not need it after the STAT.
  const s2 = await peer(async (c) => void (await serveMailbox(c, { capa: ['USER', 'TOP', 'UIDL'], messages: msgs, replyDelayMs: 20, strictNoPipelining: true })));
  const c2 = await Pop3Client.connect(opts(s2.port));
  const r2 = await c2.loginAndStat({ ...login, allowInsecureAuth: true }, 2);
  assert.deepEqual([r2.stat.count, r2.probeUid], [2, undefined]);
  await c2.quit();
});

test('USER and PASS go out in one write when the server pipelines (RFC 2449); nothing follows PASS before its reply; a refused USER is the error', T, async () => {
  const msgs = [message('a', 'x'), message('b', 'y')];
  const s = await peer(async (c) => void (await serveMailbox(c, { capa: ['USER', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'], messages: msgs, user: 'user' })));
  const c = await Pop3Client.connect(opts(s.port));
  const rt = c.stats.roundTrips;
  const r = await c.loginAndStat({ username: 'user', password: 'pass', allowInsecureAuth: true, capaAfterLogin: false }, 2);
  assert.equal(c.stats.roundTrips - rt, 2, 'USER with PASS, then STAT with UIDL n');
  assert.deepEqual([r.mechanism, r.stat.count, r.probeUid], ['user', 2, 'uid-2']);
  await c.quit();
  const bad = await Pop3Client.connect(opts(s.port));
  const { err } = await rejectsWith(bad.login({ username: 'nobody', password: 'pass', allowInsecureAuth: true }), 'EAUTH');
  assert.match(err.message, /^USER failed/);
  assert.equal(bad.state, 'AUTHORIZATION', 'the pipelined PASS was answered and dropped: the session is still in step');
  await bad.quit();
  await s.settled();
  assert.deepEqual(s.conns[0]!.received.map((l) => l.split(' ')[0]), ['CAPA', 'USER', 'PASS', 'STAT', 'UIDL', 'QUIT']);
});

test('a plain -ERR to a mechanism is not a failed login: the next candidate is tried, and the refusal is noted for that server (host, port, certificate)', T, async () => {
  const mat = tlsMaterial(good);
  const msgs = [message('a', 'x')];
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['USER', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL PLAIN'],
      messages: msgs,
      // Lists PLAIN, does not really support it.
      handle: (p, verb) => (verb === 'AUTH' ? (p.write('-ERR Unsupported authentication mechanism.\r\n'), true) : false),
    });
  }, { implicitTls: { ...mat, secureContext: tls.createSecureContext({ key: mat.key, cert: mat.cert }) } });
  const notes = new Map<string, ServerFacts>();
  const memory = new Pop3Memory({ notes: { recall: (k) => notes.get(k), note: (k, f) => void notes.set(k, f) } });
  const c1 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory }));
  assert.equal((await c1.login({ username: 'user', password: 'pass', capaAfterLogin: false })).mechanism, 'user');
  await c1.quit();
  const fp = new X509Certificate(await readFile(good.certFile)).fingerprint256;
  assert.deepEqual([...notes], [[serverKeyOf('127.0.0.1', s.port, fp), { refusedMechanisms: ['plain'] }]]);
  // The next session (no resumption: a fresh CAPA) starts with the mechanism that worked.
  const c2 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory }));
  assert.equal((await c2.login({ username: 'user', password: 'pass', capaAfterLogin: false })).mechanism, 'user');
  await c2.quit();
  // A wrong password answered with a coded refusal is one attempt; the note stays.
  const c3 = await Pop3Client.connect(opts(s.port, { tls: 'implicit', ca, memory }));
  await rejectsWith(c3.login({ username: 'user', password: 'wrong' }), 'EAUTH');
  c3.destroy();
  await s.settled().catch(() => {});
  assert.deepEqual(s.conns.map((c) => c.received.map((l) => l.split(' ')[0])), [
    ['CAPA', 'AUTH', 'USER', 'PASS', 'QUIT'],
    ['CAPA', 'USER', 'PASS', 'QUIT'],
    ['CAPA', 'USER', 'PASS'],
  ]);
  assert.deepEqual(notes.get(serverKeyOf('127.0.0.1', s.port, fp)), { refusedMechanisms: ['plain'] });
  // Another certificate on the same host and port is another server: nothing known.
  assert.equal(notes.get(serverKeyOf('127.0.0.1', s.port, '00')), undefined);
});

test('a server that refuses every mechanism without a response code: at most MAX_MECHANISM_ATTEMPTS tries, one EAUTH, nothing noted; never a cleartext one without allow_insecure_auth', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      greeting: '+OK ready <1.2@host>',
      capa: ['USER', 'TOP', 'UIDL', 'SASL SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN'],
      handle: (p, verb) => {
        if (verb === 'AUTH' || verb === 'APOP' || verb === 'PASS') p.write('-ERR unknown command\r\n');
        else if (verb === 'USER') p.write('+OK\r\n');
        else return false;
        return true;
      },
    });
  });
  const notes = new Map<string, ServerFacts>();
  const memory = new Pop3Memory({ notes: { recall: (k) => notes.get(k), note: (k, f) => void notes.set(k, f) } });
  // Unencrypted: only the SCRAMs may be tried (cleartext and weak ones need allow_insecure_auth).
  const c1 = await Pop3Client.connect(opts(s.port, { memory }));
  const { err } = await rejectsWith(c1.login({ username: 'user', password: 'pass' }), 'EAUTH');
  assert.equal(err.respCode, undefined);
  c1.destroy();
  const c2 = await Pop3Client.connect(opts(s.port, { memory }));
  await rejectsWith(c2.login({ username: 'user', password: 'pass', allowInsecureAuth: true }), 'EAUTH');
  c2.destroy();
  await s.settled().catch(() => {});
  const auths = s.conns.map((c) => c.received.filter((l) => !l.startsWith('CAPA')).map((l) => l.split(' ').slice(0, 2).join(' ')));
  assert.deepEqual(auths[0], ['AUTH SCRAM-SHA-256', 'AUTH SCRAM-SHA-1']);
  assert.equal(auths[1]!.filter((l) => l.startsWith('AUTH') || l.startsWith('USER') || l.startsWith('APOP')).length, MAX_MECHANISM_ATTEMPTS);
  assert.deepEqual([...notes], [], 'a login that failed teaches nothing');
});

// ---- authentication policy ----

test('cleartext auth is refused without opt-in, before anything is sent', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { greeting: '+OK ready <123.456@host>', capa: ['USER', 'SASL PLAIN LOGIN CRAM-MD5'] })));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.login({ username: 'user', password: 'pass' }), 'EINSECURE');
  for (const m of ['user', 'plain', 'login', 'cram-md5', 'apop'] as const) {
    await rejectsWith(c.login({ username: 'user', password: 'pass', mechanism: m }), 'EINSECURE');
  }
  await rejectsWith(c.login({ username: 'user', accessToken: 'tok', mechanism: 'xoauth2' }), 'ENO_MECHANISM');
  assert.equal(c.state, 'AUTHORIZATION');
  await c.quit();
  await s.settled();
  assert.deepEqual(s.conns[0]!.received, ['CAPA', 'QUIT']);
});

test('with allowInsecureAuth the strongest offered mechanism is used', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      greeting: '+OK ready <1.2@h>',
      capa: ['USER', 'SASL PLAIN LOGIN'],
      handle: async (cc, verb, args, st) => {
        if (verb !== 'AUTH') return false;
        assert.equal(args[0], 'PLAIN');
        assert.equal(Buffer.from(args[1]!, 'base64').toString(), '\0user\0pass');
        st.loggedIn = true;
        cc.write('+OK\r\n');
        return true;
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port));
  const r = await c.login({ username: 'user', password: 'pass', allowInsecureAuth: true });
  assert.equal(r.mechanism, 'plain');
  await c.quit();
});

test('no usable mechanism -> ENO_MECHANISM', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { capa: ['TOP', 'SASL GSSAPI'] })));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.login({ username: 'user', password: 'pass', allowInsecureAuth: true }), 'ENO_MECHANISM');
  await rejectsWith(c.login({ username: 'user', password: 'pass', mechanism: 'apop', allowInsecureAuth: true }), 'ENO_MECHANISM');
  await c.quit();
});

test('commands in the wrong state -> ESTATE', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: [message('a', 'b\r\n')] })));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.stat(), 'ESTATE');
  await rejectsWith(c.top(1, 0), 'ESTATE');
  await rejectsWith(c.dele(1), 'ESTATE');
  await c.login({ username: 'user', password: 'pass', allowInsecureAuth: true });
  await rejectsWith(c.login({ username: 'user', password: 'pass', allowInsecureAuth: true }), 'ESTATE');
  await rejectsWith(c.top(0, 0), 'EINVALID');
  await rejectsWith(c.top(1.5, 0), 'EINVALID');
  await c.quit();
  await rejectsWith(c.stat(), 'ESTATE');
});

test('CR/LF in arguments is refused (no command injection)', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, {})));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.login({ username: 'user\r\nDELE 1', password: 'pass', allowInsecureAuth: true }), 'EINVALID');
  await c.quit();
  await s.settled();
  assert.ok(!s.conns[0]!.received.some((l) => l.startsWith('DELE')));
});

// ---- SCRAM against a hostile server ----

function scramPeer(mode: 'good' | 'bad-signature' | 'no-final', password = 'pass'): (c: PeerConn) => Promise<void> {
  return async (c) => {
    await serveMailbox(c, {
      capa: ['SASL SCRAM-SHA-256', 'TOP', 'UIDL'],
      handle: async (cc, verb, args, st) => {
        if (verb !== 'AUTH') return false;
        assert.equal(args[0], 'SCRAM-SHA-256');
        const clientFirst = Buffer.from(args[1]!, 'base64').toString();
        assert.ok(clientFirst.startsWith('n,,'));
        const bare = clientFirst.slice(3);
        const cnonce = /r=([^,]+)/.exec(bare)![1]!;
        const salt = randomBytes(16);
        const serverFirst = `r=${cnonce}SRV${randomBytes(6).toString('hex')},s=${salt.toString('base64')},i=4096`;
        cc.write(`+ ${Buffer.from(serverFirst).toString('base64')}\r\n`);
        const clientFinal = Buffer.from(await cc.readLine(), 'base64').toString();
        const without = clientFinal.slice(0, clientFinal.indexOf(',p='));
        const proof = Buffer.from(clientFinal.slice(clientFinal.indexOf(',p=') + 3), 'base64');
        const authMessage = `${bare},${serverFirst},${without}`;
        const salted = pbkdf2Sync(password, salt, 4096, 32, 'sha256');
        const clientKey = createHmac('sha256', salted).update('Client Key').digest();
        const stored = createHash('sha256').update(clientKey).digest();
        const sig = createHmac('sha256', stored).update(authMessage).digest();
        const expectedProof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
        if (!expectedProof.equals(proof)) {
          cc.write('-ERR [AUTH] bad proof\r\n');
          return true;
        }
        const serverSig = createHmac('sha256', createHmac('sha256', salted).update('Server Key').digest()).update(authMessage).digest();
        if (mode === 'no-final') {
          st.loggedIn = true;
          cc.write('+OK trust me\r\n');
          return true;
        }
        const v = mode === 'good' ? serverSig : randomBytes(32);
        cc.write(`+ ${Buffer.from(`v=${v.toString('base64')}`).toString('base64')}\r\n`);
        const last = await cc.readLine();
        if (last === '*') cc.write('-ERR cancelled\r\n');
        else {
          assert.equal(last, '');
          st.loggedIn = true;
          cc.write('+OK welcome\r\n');
        }
        return true;
      },
    });
  };
}

test('SCRAM-SHA-256 over cleartext needs no opt-in and verifies the server', T, async () => {
  const s = await peer(scramPeer('good'));
  const c = await Pop3Client.connect(opts(s.port));
  const r = await c.login({ username: 'user', password: 'pass' });
  assert.equal(r.mechanism, 'scram-sha-256');
  await c.quit();
});

test('SCRAM with a bad server signature -> ESCRAM_SERVER_SIGNATURE (exchange cancelled)', T, async () => {
  const s = await peer(scramPeer('bad-signature'));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.login({ username: 'user', password: 'pass' }), 'ESCRAM_SERVER_SIGNATURE');
  c.destroy();
  await s.settled();
  assert.equal(s.conns[0]!.received.at(-1), '*', 'the client cancels the exchange');
});

test('SCRAM success without a server signature -> ESCRAM_SERVER_SIGNATURE and the session is dropped', T, async () => {
  const s = await peer(scramPeer('no-final'));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.login({ username: 'user', password: 'pass' }), 'ESCRAM_SERVER_SIGNATURE');
  assert.equal(c.state, 'CLOSED');
});

test('SCRAM with a wrong password -> EAUTH', T, async () => {
  const s = await peer(scramPeer('good', 'other'));
  const c = await Pop3Client.connect(opts(s.port));
  await rejectsWith(c.login({ username: 'user', password: 'pass' }), 'EAUTH');
  await c.quit();
});

// ---- pipelining ----

const mailbox = Array.from({ length: 40 }, (_, i) => message(`m${i + 1}`, `body ${i + 1}\r\n.dot line\r\n`));

async function runWorkload(port: number, o: Partial<Pop3Options> = {}) {
  const c = await loggedIn(port, o);
  const seen: number[] = [];
  const tops = await c.topMany(
    mailbox.map((_, i) => i + 1).concat([99]),
    1,
    (m) => void seen.push(m),
  );
  const uids = await c.uidlMany([1, 5, 40, 41]);
  const dels = await c.deleMany([2, 3, 77]);
  const stat = await c.stat();
  const stats = c.stats;
  await c.quit();
  return {
    tops: [...tops].map(([k, v]) => [k, v instanceof Pop3Error ? v.code : v.toString('latin1')]),
    seen,
    uids: [...uids],
    dels: [...dels].map(([k, v]) => [k, v?.code ?? null]),
    stat,
    stats,
  };
}

test('pipelined and one-at-a-time paths give identical results; pipelining saves round trips', T, async () => {
  const pipelined = await peer(async (c) => void (await serveMailbox(c, { messages: mailbox })));
  const strict = await peer(async (c) => {
    const st = await serveMailbox(c, { messages: mailbox, capa: ['USER', 'TOP', 'UIDL'], replyDelayMs: 2, strictNoPipelining: true });
    assert.deepEqual(st.violations, [], 'client pipelined against a server without PIPELINING');
  });
  const a = await runWorkload(pipelined.port);
  const b = await runWorkload(strict.port);
  const off = await runWorkload(pipelined.port, { pipelining: false });
  for (const r of [b, off]) {
    assert.deepEqual(r.tops, a.tops);
    assert.deepEqual(r.seen, a.seen);
    assert.deepEqual(r.uids, a.uids);
    assert.deepEqual(r.dels, a.dels);
    assert.deepEqual(r.stat, a.stat);
  }
  assert.equal(a.seen.length, 40);
  assert.deepEqual(a.uids, [[1, 'uid-1'], [5, 'uid-5'], [40, 'uid-40'], [41, null]]);
  assert.deepEqual(a.dels, [[2, null], [3, null], [77, 'ERR']]);
  assert.equal(a.tops.at(-1)![1], 'ERR');
  assert.ok(a.stats.roundTrips < 15, `pipelined round trips: ${a.stats.roundTrips}`);
  assert.ok(b.stats.roundTrips > 45, `sequential round trips: ${b.stats.roundTrips}`);
  await strict.settled();
  assert.deepEqual(strict.scriptErrors, []);
});

test('the pipeline window bounds the commands in flight', T, async () => {
  let maxBurst = 0;
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: mailbox,
      handle: async (_cc, verb) => {
        if (verb === 'TOP') {
          // Count lines already waiting (sent before we answered this one).
          await sleep(5);
          const waiting = (c as unknown as { buf: Buffer }).buf.toString().split('\r\n').length - 1;
          maxBurst = Math.max(maxBurst, waiting + 1);
        }
        return false;
      },
    });
  });
  const c = await loggedIn(s.port, { pipelineWindow: 4 });
  const res = await c.topMany(mailbox.map((_, i) => i + 1), 0);
  assert.equal(res.size, 40);
  assert.ok(maxBurst <= 4 && maxBurst >= 2, `max in flight seen by server: ${maxBurst}`);
  await c.quit();
});

test('server claiming PIPELINING that sends extra replies -> EPROTOCOL', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: mailbox,
      handle: (cc, verb, args) => {
        if (verb === 'TOP' && args[0] === '3') {
          cc.write('-ERR bogus extra reply\r\n');
        }
        return false;
      },
    });
  });
  const c = await loggedIn(s.port);
  // The extra reply is taken as the reply to TOP 3; the real one then has no command -> session fails.
  await rejectsWith(c.topMany([1, 2, 3, 4, 5, 6], 0), 'EPROTOCOL');
  assert.equal(c.state, 'CLOSED');
});

// ---- TOP fallback ----

test('no TOP in CAPA: top() emulates with RETR, identical output, counted and logged once', T, async () => {
  const logs: string[] = [];
  const logger = {
    debug() {},
    info: (m: string) => void logs.push(m),
    warn() {},
    error() {},
    child() {
      return logger;
    },
  };
  const withTop = await peer(async (c) => void (await serveMailbox(c, { messages: mailbox })));
  const noTop = await peer(async (c) => {
    await serveMailbox(c, {
      messages: mailbox,
      capa: ['USER', 'UIDL'],
      handle: (cc, verb) => {
        if (verb !== 'TOP') return false;
        cc.write('-ERR what is TOP\r\n');
        return true;
      },
    });
  });
  const a = await loggedIn(withTop.port);
  const b = await loggedIn(noTop.port, { logger });
  assert.deepEqual(await b.top(1, 0), await a.top(1, 0));
  assert.deepEqual(await b.top(2, 1), await a.top(2, 1));
  const ma = await a.topMany([3, 4, 5], 0);
  const mb = await b.topMany([3, 4, 5], 0);
  assert.deepEqual([...mb], [...ma]);
  assert.equal(b.stats.topFallbacks, 5);
  assert.equal(a.stats.topFallbacks, 0);
  assert.equal(logs.filter((l) => /no TOP/.test(l)).length, 1);
  await a.quit();
  await b.quit();
});

test('no CAPA at all: TOP is tried; if it fails the RETR fallback is learned', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: mailbox,
      capa: null,
      handle: (cc, verb) => {
        if (verb !== 'TOP') return false;
        cc.write('-ERR unknown command\r\n');
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  assert.equal(c.capabilities, null);
  const r = await c.topMany([1, 2, 3], 0);
  assert.equal(r.size, 3);
  assert.ok([...r.values()].every((v) => Buffer.isBuffer(v)));
  await rejectsWith(c.top(99, 0), 'ERR');
  await c.quit();
  await s.settled();
  const verbs = s.conns[0]!.received.map((l) => l.split(' ')[0]);
  assert.equal(verbs.filter((v) => v === 'TOP').length, 1, 'TOP tried once, then RETR only');
});

// ---- one bad message fails alone (issue 13, point 2) ----

test('a 70 KB header line fails only that message\'s TOP (ELIMIT); the pipelined TOPs around it arrive, the session goes on', T, async () => {
  const bad = message('bad', 'x\r\n', `X-Long: ${'L'.repeat(70 * 1024)}\r\n`);
  const msgs = [message('m1', 'a\r\n'), bad, message('m3', 'c\r\n'), message('m4', 'd\r\n')];
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: msgs })));
  const c = await loggedIn(s.port);
  const got = new Map<number, string>();
  await c.topEach([1, 2, 3, 4], 0, (m, r) => void got.set(m, r instanceof Pop3Error ? r.code : r.toString('latin1')));
  assert.deepEqual([...got.keys()].sort(), [1, 2, 3, 4]);
  assert.equal(got.get(2), 'ELIMIT');
  for (const m of [1, 3, 4]) assert.match(got.get(m)!, new RegExp(`^From: cam@example.com\r\nSubject: m${m}\r\n`));
  assert.equal(c.state, 'TRANSACTION');
  assert.deepEqual(await c.stat(), { count: 4, size: msgs.reduce((a, b) => a + b.length, 0) });
  await c.quit();
});

test('a TOP reply over its cap is dropped past the cap (ELIMIT for that message), and so is the RETR fallback\'s', T, async () => {
  const pad = Array.from({ length: 4000 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(90)}`).join('\r\n') + '\r\n';
  const huge = message('huge', 'x\r\n', pad); // ~400 KB header block
  const msgs = [message('m1', 'a\r\n'), huge, message('m3', 'c\r\n')];
  for (const capa of [undefined, ['USER', 'UIDL', 'PIPELINING']]) {
    const s = await peer(async (c) => void (await serveMailbox(c, { messages: msgs, ...(capa ? { capa } : {}) })));
    const c = await loggedIn(s.port);
    const got = new Map<number, string>();
    await c.topEach([1, 2, 3], 0, (m, r) => void got.set(m, r instanceof Pop3Error ? `${r.code} ${r.message}` : 'ok'), { maxBytes: 64 * 1024 });
    assert.equal(got.get(1), 'ok');
    assert.equal(got.get(3), 'ok');
    assert.match(got.get(2)!, /^ELIMIT .*(larger than 65536 bytes)/, capa ? 'RETR fallback' : 'TOP');
    assert.equal(c.state, 'TRANSACTION');
    await c.quit();
  }
});

// ---- lying servers (issue 13, point 4) ----

test('CAPA lists TOP but TOP is refused: RETR fallback for that message, remembered for the session; a message that is really gone keeps TOP\'s error', T, async () => {
  const logs: string[] = [];
  const logger = { debug() {}, info: (m: string) => void logs.push(m), warn() {}, error() {}, child() { return logger; } };
  const honest = await peer(async (c) => void (await serveMailbox(c, { messages: mailbox })));
  const liar = await peer(async (c) => {
    await serveMailbox(c, {
      messages: mailbox,
      capa: ['USER', 'TOP', 'UIDL'], // no PIPELINING: the exact order of commands is asserted below
      handle: (cc, verb) => {
        if (verb !== 'TOP') return false;
        cc.write('-ERR TOP disabled by policy\r\n');
        return true;
      },
    });
  });
  const a = await loggedIn(honest.port);
  const b = await loggedIn(liar.port, { logger });
  assert.ok(b.capabilities?.has('TOP'));
  assert.deepEqual(await b.top(1, 0), await a.top(1, 0));
  assert.deepEqual([...(await b.topMany([2, 3, 4], 1))], [...(await a.topMany([2, 3, 4], 1))]);
  await rejectsWith(b.top(99, 0), 'ERR');
  assert.equal(b.stats.topFallbacks, 4);
  assert.equal(logs.filter((l) => /lists TOP but refused it/.test(l)).length, 1);
  await a.quit();
  await b.quit();
  await liar.settled();
  const sent = liar.conns[0]!.received.filter((l) => /^(TOP|RETR)/.test(l));
  assert.deepEqual(sent, ['TOP 1 0', 'RETR 1', 'RETR 2', 'RETR 3', 'RETR 4', 'RETR 99'], 'TOP refused once, then RETR only');
});

test('CAPA lists TOP and UIDL but the server refuses both: a poll still alerts every message (synthetic ids, RETR headers)', T, async () => {
  const { pollMailbox } = await import('../../src/mailbox/poll.js');
  const { MailboxState } = await import('../../src/state/mailbox-state.js');
  const { Outbox } = await import('../../src/alerts/outbox.js');
  const { compileRules, createRateLimiter } = await import('../../src/rules/index.js');
  const { createLogger } = await import('../../src/log.js');
  const msgs = [1, 2, 3].map((i) => message(`ALARM ${i}`, 'motion\r\n'));
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      messages: msgs,
      capa: ['USER', 'TOP', 'UIDL', 'PIPELINING'],
      handle: (cc, verb) => {
        if (verb !== 'TOP' && verb !== 'UIDL') return false;
        cc.write('-ERR not here\r\n');
        return true;
      },
    });
  });
  const sdir = path.join(dir, 'liar-poll');
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => logs.push(l), timestamps: false });
  const { state } = await MailboxState.load(sdir, 'liar', logger);
  const outbox = await Outbox.open(path.join(sdir, 'outbox'), { maxMessages: 100, maxBytes: 1 << 20, whenFull: 'stop_polling' }, logger);
  const ruleSet = compileRules([{ name: 'alarm', when: { subject: { contains: 'ALARM' } } } as never], { trustedAuthservIds: [] });
  const pollOnce = (firstRun: boolean) => pollMailbox({
    target: {
      id: 'liar', host: '127.0.0.1', port: s.port, tls: 'none', username: 'user', password: 'pass', auth: 'user', allowInsecureAuth: true,
      keep: true, existing: 'process', maxMessageSize: 1 << 20, timeouts: { connectMs: 5000, greetingMs: 5000, commandMs: 5000, sessionMs: 20_000 },
      pipelining: true, fastUidl: true,
    },
    ruleSet, state, firstRun, outbox, baseTopic: 'p2m', rateLimiter: createRateLimiter(), logger, ackTimeoutMs: 10,
  });
  const result = await pollOnce(true);
  assert.equal(result.newMessages, 3);
  assert.equal(result.failed, 0, logs.join('\n'));
  assert.equal(result.alerts, 3);
  const queued = outbox.pendingFor('liar');
  assert.equal(new Set(queued.map((e) => e.uid)).size, 3);
  assert.ok(queued.every((e) => e.uid.startsWith('syn-')), 'synthetic ids');
  assert.ok(logs.some((l) => /lists TOP but refused it/.test(l)));
  // The next poll finds the same synthetic ids: nothing new. A refused `UIDL n` probe goes straight to the listing.
  const again = await pollOnce(false);
  assert.equal(again.newMessages, 0);
  assert.equal(again.alerts, 0);
  await s.settled();
  assert.deepEqual(s.conns[0]!.received.filter((l) => l.startsWith('UIDL')), ['UIDL'], 'UIDL refused once, not asked again');
  assert.deepEqual(s.conns[1]!.received.filter((l) => l.startsWith('UIDL')), ['UIDL 3', 'UIDL']);
});

// ---- slow-loris inside a reply (issue 13, point 4): the minimum reply rate ----

test('data lines trickled under the minimum reply rate (each line in time) -> ESLOW, long before the session deadline', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: async (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\n');
        for (let i = 0; i < 2000 && cc.isOpen; i++) {
          cc.write(`l${i}\r\n`); // about 6 bytes per 50 ms: ~120 B/s
          await sleep(50);
        }
        cc.write('.\r\n');
        return true;
      },
    });
  });
  const c = await loggedIn(s.port, { timeouts: { commandMs: 5000, sessionMs: 60_000, minReplyBytesPerSec: 256, replyRateWindowMs: 1000 } });
  const { err } = await rejectsWith(c.retr(1), 'ESLOW');
  assert.match(err.message, /RETR: reply slower than 256 bytes\/s/);
  assert.equal(c.state, 'CLOSED');
});

test('the reply rate counts transfer only: a fast reply passes, and a stream consumer that pauses longer than the window is not cut off', T, async () => {
  const big = Buffer.from('Subject: big\r\n\r\n' + ('z'.repeat(98) + '\r\n').repeat(3000)); // ~300 KB
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: [big], replyDelayMs: 300 })));
  const c = await loggedIn(s.port, { timeouts: { commandMs: 5000, sessionMs: 60_000, minReplyBytesPerSec: 256, replyRateWindowMs: 200 } });
  assert.equal((await c.retr(1)).length, big.length, 'a server that thinks before replying is not slow');
  const stream = await c.retrStream(1);
  await sleep(800); // backpressure: nothing read for four windows
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).length, big.length);
  assert.equal(c.fatalError, null);
  await c.quit();
});

// ---- streams ----

test('retrStream applies backpressure and delivers the exact message', T, async () => {
  const big = Buffer.from('Subject: s\r\n\r\n' + Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'q'.repeat(40)}`).join('\r\n') + '\r\n');
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: [big, message('n', 'x\r\n')] })));
  const c = await loggedIn(s.port);
  const stream = await c.retrStream(1);
  const chunks: Buffer[] = [];
  for await (const ch of stream) {
    chunks.push(ch as Buffer);
    if (chunks.length % 500 === 0) await sleep(1);
  }
  assert.deepEqual(Buffer.concat(chunks), big);
  // A destroyed stream drains the rest; the session continues.
  const s2 = await c.retrStream(1);
  s2.destroy();
  assert.equal((await c.retr(2)).toString(), message('n', 'x\r\n').toString());
  await c.quit();
});

test('retrStream errors with the connection error when the server dies mid-message', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      handle: (cc, verb) => {
        if (verb !== 'RETR') return false;
        cc.write('+OK\r\nSubject: x\r\n\r\npart');
        setTimeout(() => cc.destroy(), 30);
        return true;
      },
    });
  });
  const c = await loggedIn(s.port);
  const stream = await c.retrStream(1);
  const err = await new Promise<unknown>((resolve) => {
    stream.on('error', resolve);
    stream.on('end', () => resolve(null));
    stream.resume();
  });
  assert.ok(err instanceof Pop3Error && err.code === 'ECLOSED', String(err));
});

test('destroy() ends the session without QUIT', T, async () => {
  const s = await peer(async (c) => void (await serveMailbox(c, { messages: mailbox })));
  const c = await loggedIn(s.port);
  await c.dele(1);
  c.destroy();
  c.destroy();
  assert.equal(c.state, 'CLOSED');
  await rejectsWith(c.stat(), 'ECLOSED');
  await s.settled();
  assert.ok(!s.conns[0]!.received.includes('QUIT'));
});

// ---- fuzz: random replies never crash the client, hang it, or produce anything but Pop3Error ----


const FRAGMENTS = ['+OK', '-ERR', ' ', '\r\n', '\n', '\r', '.', '..', '.\r\n', '+OK\r\n', '1 20\r\n', '+ ', '[IN-USE]', '[SYS/TEMP]', 'x', '\0', '\xff', 'SASL PLAIN\r\n', 'PIPELINING\r\n'];

test('fuzz: 200 sessions of random replies end in success or a Pop3Error, in bounded time, without leaks', { timeout: 120_000 }, async (t) => {
  const rand = prng(424242);
  const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rand() * xs.length)]!;
  const garbage = () => {
    let out = '';
    const n = Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) out += pick(FRAGMENTS);
    return out;
  };
  const plans: string[][] = [];
  const s = await peer(async (c) => {
    const plan = plans.shift() ?? [];
    c.write(plan.shift() ?? '+OK\r\n');
    while (c.isOpen) {
      const l = await c.readLine(3000).catch(() => null);
      if (l === null) return;
      const r = plan.shift();
      if (r === undefined || r === 'CLOSE') return c.destroy();
      if (r !== 'SILENT') c.write(r);
    }
  });
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const plan: string[] = [];
    plan.push(rand() < 0.8 ? '+OK fuzz <1.2@x>\r\n' : garbage());
    for (let k = 0; k < 30; k++) {
      const roll = rand();
      if (roll < 0.75) plan.push(pick(['+OK\r\n', '+OK 2 40\r\n', '+OK\r\nSubject: a\r\n\r\n.\r\n', '+OK\r\n1 10\r\n2 30\r\n.\r\n', '+OK 1 uid1\r\n', '-ERR no\r\n']));
      else if (roll < 0.95) plan.push(garbage() + (rand() < 0.5 ? '\r\n' : ''));
      else if (roll < 0.975) plan.push('SILENT');
      else plan.push('CLOSE');
    }
    plans.push(plan);
    const t0 = Date.now();
    let outcome = 'ok';
    let client: Pop3Client | null = null;
    try {
      client = await Pop3Client.connect(opts(s.port, { timeouts: { connectMs: 500, greetingMs: 300, commandMs: 40, sessionMs: 1500 } }));
      await client.login({ username: 'user', password: 'pass', mechanism: 'user', allowInsecureAuth: true });
      await client.stat();
      await client.uidlMany([1, 2]);
      await client.topMany([1, 2, 3], 0);
      const st = await client.retrStream(1);
      await new Promise<void>((resolve) => {
        st.on('error', () => resolve());
        st.on('end', () => resolve());
        st.resume();
      });
      await client.retr(2);
      await client.deleMany([1, 2]);
      await client.quit();
    } catch (e) {
      assert.ok(e instanceof Pop3Error, `non-Pop3Error escaped: ${String(e)}`);
      outcome = e.code;
    } finally {
      client?.destroy();
    }
    const ms = Date.now() - t0;
    assert.ok(ms < 2500, `session ${i} took ${ms} ms`);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  t.diagnostic(`outcomes: ${JSON.stringify([...outcomes])}`);
  // The generator must actually exercise failures, not only happy paths.
  assert.ok((outcomes.get('EPROTOCOL') ?? 0) > 20, JSON.stringify([...outcomes]));
  assert.ok(outcomes.size >= 4, JSON.stringify([...outcomes]));
});
