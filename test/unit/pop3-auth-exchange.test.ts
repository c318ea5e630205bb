// RFC 5034 AUTH exchanges on the wire (initial response, continuations, OAuth error JSON, cancel) and secret masking in debug logs.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client, Pop3Error, type Pop3Options } from '../../src/pop3/index.js';
import { serveMailbox, startHostilePop3, type HostileServer, type PeerConn } from '../support/hostile-pop3.js';

const T = { timeout: 15_000 };
const servers: HostileServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function peer(script: (c: PeerConn) => Promise<void>): Promise<HostileServer> {
  const s = await startHostilePop3(script);
  servers.push(s);
  return s;
}

function opts(port: number, extra: Partial<Pop3Options> = {}): Pop3Options {
  return { host: '127.0.0.1', port, tls: 'none', timeouts: { commandMs: 3000, sessionMs: 10_000 }, ...extra };
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('latin1');

test('XOAUTH2 success with initial response', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['SASL XOAUTH2 OAUTHBEARER'],
      handle: (cc, verb, args, st) => {
        if (verb !== 'AUTH') return false;
        assert.equal(args[0], 'XOAUTH2');
        assert.equal(unb64(args[1]!), 'user=me@x\x01auth=Bearer tok-123\x01\x01');
        st.loggedIn = true;
        cc.write('+OK\r\n');
        return true;
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port));
  const r = await c.login({ username: 'me@x', accessToken: 'tok-123', mechanism: 'xoauth2', allowInsecureAuth: true });
  assert.equal(r.mechanism, 'xoauth2');
  await c.quit();
});

test('OAUTHBEARER failure: error JSON continuation is answered with 0x01, then EAUTH with the detail', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['SASL OAUTHBEARER'],
      handle: async (cc, verb, args) => {
        if (verb !== 'AUTH') return false;
        assert.equal(args[0], 'OAUTHBEARER');
        assert.match(unb64(args[1]!), /^n,a=me@x,\x01host=127\.0\.0\.1\x01port=\d+\x01auth=Bearer expired\x01\x01$/);
        cc.write(`+ ${b64('{"status":"invalid_token","scope":"mail"}')}\r\n`);
        const ack = await cc.readLine();
        assert.equal(unb64(ack), '\x01');
        cc.write('-ERR [AUTH] token rejected\r\n');
        return true;
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port));
  const err = await c.login({ username: 'me@x', accessToken: 'expired', allowInsecureAuth: true }).catch((e: unknown) => e);
  assert.ok(err instanceof Pop3Error);
  assert.equal(err.code, 'EAUTH');
  assert.equal(err.respCode, 'AUTH');
  assert.match(err.message, /invalid_token/);
  assert.equal(c.state, 'AUTHORIZATION');
  await c.quit();
  await s.settled();
  assert.deepEqual(s.scriptErrors, []);
});

test('an initial response that would exceed 255 octets is sent after an empty challenge instead', T, async () => {
  const token = 'T'.repeat(400);
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['SASL XOAUTH2'],
      handle: async (cc, verb, args, st) => {
        if (verb !== 'AUTH') return false;
        assert.deepEqual(args, ['XOAUTH2']);
        cc.write('+ \r\n');
        const ir = unb64(await cc.readLine());
        assert.equal(ir, `user=me\x01auth=Bearer ${token}\x01\x01`);
        st.loggedIn = true;
        cc.write('+OK\r\n');
        return true;
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port));
  await c.login({ username: 'me', accessToken: token, allowInsecureAuth: true });
  await c.quit();
  await s.settled();
  assert.deepEqual(s.scriptErrors, []);
});

test('LOGIN and CRAM-MD5 exchanges', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['SASL LOGIN CRAM-MD5'],
      handle: async (cc, verb, args, st) => {
        if (verb !== 'AUTH') return false;
        if (args[0] === 'LOGIN') {
          assert.equal(args.length, 1, 'LOGIN has no initial response');
          cc.write(`+ ${b64('Username:')}\r\n`);
          assert.equal(unb64(await cc.readLine()), 'user');
          cc.write(`+ ${b64('Password:')}\r\n`);
          assert.equal(unb64(await cc.readLine()), 'pass');
        } else {
          cc.write(`+ ${b64('<1896.697170952@postoffice.reston.mci.net>')}\r\n`);
          assert.match(unb64(await cc.readLine()), /^user [0-9a-f]{32}$/);
        }
        st.loggedIn = true;
        cc.write('+OK\r\n');
        return true;
      },
    });
  });
  for (const mechanism of ['login', 'cram-md5'] as const) {
    const c = await Pop3Client.connect(opts(s.port));
    assert.equal((await c.login({ username: 'user', password: 'pass', mechanism, allowInsecureAuth: true })).mechanism, mechanism);
    await c.quit();
  }
  await s.settled();
  assert.deepEqual(s.scriptErrors, []);
});

test('a challenge that is not base64 is cancelled with "*" -> EPROTOCOL; endless challenges end the session', T, async () => {
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['SASL PLAIN CRAM-MD5'],
      handle: async (cc, verb, args) => {
        if (verb !== 'AUTH') return false;
        if (args[0] === 'CRAM-MD5') {
          cc.write('+ not*base64!\r\n');
          assert.equal(await cc.readLine(), '*');
          cc.write('-ERR cancelled\r\n');
          return true;
        }
        for (;;) {
          cc.write(`+ ${b64('again')}\r\n`);
          await cc.readLine();
        }
      },
    });
  });
  const c = await Pop3Client.connect(opts(s.port));
  await assert.rejects(c.login({ username: 'u', password: 'p', mechanism: 'cram-md5', allowInsecureAuth: true }), { code: 'EPROTOCOL' });
  assert.equal(c.state, 'AUTHORIZATION');
  await assert.rejects(c.login({ username: 'u', password: 'p', mechanism: 'plain', allowInsecureAuth: true }), { code: 'EPROTOCOL' });
  assert.equal(c.state, 'CLOSED');
});

test('debug protocol log shows commands and replies but never PASS, AUTH payloads or tokens', T, async () => {
  const lines: string[] = [];
  // A raw logger that does no redaction of its own: masking must come from the library.
  const logger = {
    debug: (m: string) => void lines.push(m),
    info: (m: string) => void lines.push(m),
    warn: (m: string) => void lines.push(m),
    error: (m: string) => void lines.push(m),
    child: () => logger,
  };
  const s = await peer(async (c) => {
    await serveMailbox(c, {
      capa: ['USER', 'SASL PLAIN', 'TOP'],
      pass: 'pw-visible?',
      handle: (cc, verb, args, st) => {
        if (verb !== 'AUTH') return false;
        st.loggedIn = unb64(args[1]!) === '\0user\0plain-pw-xyz';
        cc.write(st.loggedIn ? '+OK\r\n' : '-ERR [AUTH] no\r\n');
        return true;
      },
    });
  });
  const c1 = await Pop3Client.connect(opts(s.port, { logger }));
  await c1.login({ username: 'user', password: 'pw-visible?', mechanism: 'user', allowInsecureAuth: true });
  await c1.quit();
  const c2 = await Pop3Client.connect(opts(s.port, { logger }));
  await c2.login({ username: 'user', password: 'plain-pw-xyz', mechanism: 'plain', allowInsecureAuth: true });
  await c2.stat();
  await c2.quit();
  const all = lines.join('\n');
  assert.match(all, /C: USER user/);
  assert.match(all, /C: PASS \*\*\*/);
  assert.match(all, /C: AUTH PLAIN \*\*\*/);
  assert.match(all, /S: \+OK 0 0/);
  assert.match(all, /C: STAT/);
  for (const secret of ['pw-visible?', 'plain-pw-xyz', b64('\0user\0plain-pw-xyz')]) {
    assert.ok(!all.includes(secret), `log leaks ${secret}`);
  }
});
