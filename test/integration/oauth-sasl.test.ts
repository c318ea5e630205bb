// XOAUTH2 and OAUTHBEARER on the wire: the POP3 client logs in with a token from the local token endpoint against a scripted TLS POP3 peer; refusals end in EAUTH with the server's JSON error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pop3Client, Pop3Error } from '../../src/pop3/index.js';
import { createLogger } from '../../src/log.js';
import { OAuthTokenManager } from '../../src/oauth/index.js';
import { makeTestCA, type TestCerts } from '../support/certs.js';
import { serveMailbox, startHostilePop3, tlsMaterial, type HostileServer } from '../support/hostile-pop3.js';
import { popBearerAuth, startTokenServer, type BearerAttempt, type TokenServer } from '../support/token-server.js';

const USER = 'alice@example.com';
const CLIENT_SECRET = 'cs-sasl-Unique-0b9a8c';
const REFRESH = 'rt-sasl-Unique-77aa11';

let dir: string;
let certs: TestCerts;
let ts: TokenServer;
let ca: Buffer;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-oauth-sasl-'));
  certs = await makeTestCA(path.join(dir, 'tls'));
  ca = await readFile(certs.caFile);
  ts = await startTokenServer({ certs, clientId: 'cid', clientSecret: CLIENT_SECRET, refreshToken: REFRESH, accessTokenPrefix: 'at-sasl' });
});
after(async () => {
  await ts?.close();
  await rm(dir, { recursive: true, force: true });
});

async function peer(mechs: string, attempts: BearerAttempt[]): Promise<HostileServer> {
  return startHostilePop3(
    (c) => serveMailbox(c, {
      capa: ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', `SASL ${mechs}`],
      capaAfterLogin: ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'],
      messages: [Buffer.from('From: a@b\r\nSubject: hi\r\n\r\nbody\r\n')],
      handle: popBearerAuth(ts, { user: USER, attempts }),
    }).then(() => undefined),
    { implicitTls: tlsMaterial(certs) },
  );
}

function tokens(): OAuthTokenManager {
  return new OAuthTokenManager({ mailboxId: 'sasl', tokenUrl: ts.url, clientId: 'cid', clientSecret: CLIENT_SECRET, refreshToken: REFRESH, stateDir: dir, ca: ts.ca });
}

async function connect(port: number, lines: string[]): Promise<Pop3Client> {
  return Pop3Client.connect({
    host: '127.0.0.1', port, tls: 'implicit', ca, timeouts: { connectMs: 5000, greetingMs: 5000, commandMs: 5000, sessionMs: 20_000 },
    logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
  });
}

for (const mech of ['xoauth2', 'oauthbearer'] as const) {
  test(`${mech.toUpperCase()}: logs in with a token from the endpoint, then STAT works`, { timeout: 30_000 }, async () => {
    const attempts: BearerAttempt[] = [];
    const srv = await peer('XOAUTH2 OAUTHBEARER', attempts);
    const lines: string[] = [];
    try {
      const token = await tokens().getAccessToken();
      const client = await connect(srv.port, lines);
      const login = await client.login({ username: USER, accessToken: token, mechanism: mech });
      assert.equal(login.mechanism, mech);
      assert.deepEqual(await client.stat(), { count: 1, size: 32 });
      await client.quit();
      assert.equal(attempts.length, 1);
      const a = attempts[0]!;
      assert.equal(a.ok, true);
      assert.equal(a.token, token);
      assert.equal(a.user, USER);
      if (mech === 'oauthbearer') {
        assert.equal(a.host, '127.0.0.1');
        assert.equal(a.port, String(srv.port));
        assert.match(a.decoded, /^n,a=alice@example\.com,\x01/);
      } else {
        assert.equal(a.decoded, `user=${USER}\x01auth=Bearer ${token}\x01\x01`);
      }
      // The client's debug log shows the exchange but never the token.
      assert.ok(lines.some((l) => new RegExp(`AUTH ${mech.toUpperCase()}`).test(l)), lines.join('\n'));
      const all = lines.join('\n');
      assert.ok(!all.includes(token));
      assert.ok(!all.includes(Buffer.from(a.decoded).toString('base64')));
    } finally {
      await srv.close();
    }
  });

  test(`${mech.toUpperCase()}: a refused token ends in EAUTH carrying the server's JSON error`, { timeout: 30_000 }, async () => {
    const attempts: BearerAttempt[] = [];
    const srv = await peer('XOAUTH2 OAUTHBEARER', attempts);
    const lines: string[] = [];
    try {
      const m = tokens();
      const token = await m.getAccessToken();
      ts.revokeAccessTokens();
      const client = await connect(srv.port, lines);
      const err = await client.login({ username: USER, accessToken: token, mechanism: mech }).then(
        () => assert.fail('login must fail'),
        (e: unknown) => e,
      );
      client.destroy();
      assert.ok(err instanceof Pop3Error);
      assert.equal(err.code, 'EAUTH');
      assert.equal(err.respCode, 'AUTH');
      assert.match(err.message, mech === 'xoauth2' ? /"status":"401"/ : /"status":"invalid_token"/);
      assert.ok(!err.message.includes(token));
      assert.equal(attempts.length, 1);
      // RFC 7628: the error challenge is answered with 0x01; XOAUTH2 (Google) expects an empty response.
      assert.equal(attempts[0]!.errorAnswer, mech === 'oauthbearer' ? Buffer.from([1]).toString('base64') : '');
      assert.ok(!lines.join('\n').includes(token));
    } finally {
      await srv.close();
    }
  });
}

test('auto with only an access token prefers OAUTHBEARER, and takes XOAUTH2 when that is all the server offers', { timeout: 30_000 }, async () => {
  const token = await tokens().getAccessToken();
  for (const [offered, expected] of [['XOAUTH2 OAUTHBEARER', 'oauthbearer'], ['XOAUTH2', 'xoauth2']] as const) {
    const attempts: BearerAttempt[] = [];
    const srv = await peer(offered, attempts);
    try {
      const client = await connect(srv.port, []);
      const login = await client.login({ username: USER, accessToken: token });
      assert.equal(login.mechanism, expected);
      await client.quit();
      assert.equal(attempts[0]!.mechanism, expected.toUpperCase());
    } finally {
      await srv.close();
    }
  }
});

test('a bearer token is not sent over a plain connection without allow_insecure_auth', { timeout: 30_000 }, async () => {
  const attempts: BearerAttempt[] = [];
  const srv = await startHostilePop3((c) => serveMailbox(c, { capa: ['TOP', 'UIDL', 'SASL XOAUTH2'], handle: popBearerAuth(ts, { user: USER, attempts }) }).then(() => undefined));
  try {
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: srv.port, tls: 'none', timeouts: { connectMs: 5000, greetingMs: 5000, commandMs: 5000, sessionMs: 20_000 } });
    const err = await client.login({ username: USER, accessToken: 'at-never-sent-123', mechanism: 'xoauth2' }).then(() => null, (e: unknown) => e);
    client.destroy();
    assert.ok(err instanceof Pop3Error);
    assert.equal(err.code, 'EINSECURE');
    assert.equal(attempts.length, 0);
    assert.ok(!srv.conns[0]!.received.some((l) => l.startsWith('AUTH')));
  } finally {
    await srv.close();
  }
});
