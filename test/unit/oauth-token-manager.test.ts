// Token manager against a real local HTTPS token endpoint: refresh, caching, expiry, single-flight, rotation persisted 0600, errors and backoff without a retry storm.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OAuthError, OAuthTokenManager, type OAuthTokenManagerOptions } from '../../src/oauth/index.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from '../support/token-server.js';
import { makeTestCA, type TestCerts } from '../support/certs.js';

const CLIENT_ID = 'client-id-123.apps.example';
const CLIENT_SECRET = 'cs-Unique-5e1f0a77d2';
const REFRESH = 'rt-Unique-config-91b2c3d4e5';
const SCOPE = 'https://mail.example/ openid';

let certs: TestCerts;
let root: string;
const servers: TokenServer[] = [];

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'p2m-oauth-unit-'));
  certs = await makeTestCA(path.join(root, 'tls'));
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(root, { recursive: true, force: true });
});

async function server(o: TokenServerOptions = {}): Promise<TokenServer> {
  const s = await startTokenServer({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshToken: REFRESH, certs, ...o });
  servers.push(s);
  return s;
}

let dirN = 0;
async function stateDir(): Promise<string> {
  return mkdtemp(path.join(root, `state-${++dirN}-`));
}

/** A controllable clock. */
function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms), set: (ms: number) => void (t = ms) };
}

function manager(s: TokenServer, dir: string, extra: Partial<OAuthTokenManagerOptions> = {}): OAuthTokenManager {
  return new OAuthTokenManager({
    mailboxId: 'cam', tokenUrl: s.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshToken: REFRESH, scope: SCOPE,
    stateDir: dir, ca: s.ca, timeoutMs: 5_000, ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<OAuthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OAuthError, `expected an OAuthError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

function assertNoSecrets(text: string, extra: string[] = []): void {
  for (const s of [CLIENT_SECRET, REFRESH, ...extra]) {
    assert.ok(!text.includes(s), `text contains a secret: ${text}`);
    assert.ok(!text.includes(Buffer.from(s).toString('base64').replace(/=+$/, '')), `text contains a base64 secret: ${text}`);
  }
}

test('refresh posts a form-encoded refresh_token grant with the client credentials and scope', { timeout: 20_000 }, async () => {
  const s = await server();
  const m = manager(s, await stateDir());
  const token = await m.getAccessToken();
  assert.equal(token, s.issued[0]);
  assert.equal(s.requests.length, 1);
  const r = s.requests[0]!;
  assert.equal(r.method, 'POST');
  assert.match(String(r.headers['content-type']), /^application\/x-www-form-urlencoded/);
  assert.deepEqual(r.form, { grant_type: 'refresh_token', refresh_token: REFRESH, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, scope: SCOPE });
});

test('a public client sends no client_secret and no scope when none is configured', { timeout: 20_000 }, async () => {
  const s = await server({ clientSecret: undefined });
  const m = manager(s, await stateDir(), { clientSecret: undefined, scope: undefined });
  await m.getAccessToken();
  assert.deepEqual(Object.keys(s.requests[0]!.form).sort(), ['client_id', 'grant_type', 'refresh_token']);
});

test('the token is cached: repeated calls make no further request', { timeout: 20_000 }, async () => {
  const s = await server();
  const m = manager(s, await stateDir());
  const a = await m.getAccessToken();
  for (let i = 0; i < 20; i++) assert.equal(await m.getAccessToken(), a);
  assert.equal(s.requests.length, 1);
});

test('refreshes when 10 % of a long lifetime is left, not before', { timeout: 20_000 }, async () => {
  const s = await server({ expiresIn: 3600 });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const first = await m.getAccessToken();
  c.advance((3600 - 361) * 1000); // 361 s left: more than 10 % (360 s)
  assert.equal(await m.getAccessToken(), first);
  assert.equal(s.requests.length, 1);
  c.advance(2_000); // 359 s left
  const second = await m.getAccessToken();
  assert.notEqual(second, first);
  assert.equal(s.requests.length, 2);
});

test('refreshes when less than 60 s is left of a lifetime where 10 % is smaller', { timeout: 20_000 }, async () => {
  const s = await server({ expiresIn: 300 });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const first = await m.getAccessToken();
  c.advance(239_000); // 61 s left
  assert.equal(await m.getAccessToken(), first);
  c.advance(2_000); // 59 s left
  assert.notEqual(await m.getAccessToken(), first);
  assert.equal(s.requests.length, 2);
});

test('a very short lifetime is still cached for half of it (no request per call)', { timeout: 20_000 }, async () => {
  const s = await server({ expiresIn: 20 });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const first = await m.getAccessToken();
  c.advance(9_000);
  assert.equal(await m.getAccessToken(), first);
  c.advance(2_000);
  assert.notEqual(await m.getAccessToken(), first);
  assert.equal(s.requests.length, 2);
});

test('a missing expires_in counts as one hour', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ status: 200, json: { access_token: 'at-noexp-1', token_type: 'bearer' } });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  assert.equal(await m.getAccessToken(), 'at-noexp-1');
  c.advance(3000 * 1000);
  assert.equal(await m.getAccessToken(), 'at-noexp-1');
  c.advance(300 * 1000);
  assert.equal(await m.getAccessToken(), s.issued[0]);
});

test('invalidate() makes the next call fetch a new token', { timeout: 20_000 }, async () => {
  const s = await server();
  const m = manager(s, await stateDir());
  const a = await m.getAccessToken();
  m.invalidate();
  const b = await m.getAccessToken();
  assert.notEqual(a, b);
  assert.equal(s.requests.length, 2);
});

test('single-flight: concurrent callers share one request', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script((req, srv) => ({ ...srv.grant(req), delayMs: 300 }));
  const m = manager(s, await stateDir());
  const tokens = await Promise.all(Array.from({ length: 25 }, () => m.getAccessToken()));
  assert.equal(new Set(tokens).size, 1);
  assert.equal(s.requests.length, 1);
  assert.equal(m.requestCount, 1);
});

test('single-flight failure: concurrent callers share one failing request', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ status: 503, body: 'down', delayMs: 200 });
  const m = manager(s, await stateDir());
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => m.getAccessToken()));
  assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as OAuthError).code === 'EOAUTH_SERVER'));
  assert.equal(s.requests.length, 1);
});

test('a rotated refresh token is saved 0600 and used from then on, also after a restart', { timeout: 20_000 }, async () => {
  const s = await server({ rotate: true });
  const dir = await stateDir();
  const m1 = manager(s, dir);
  await m1.getAccessToken();
  const rotated1 = s.rotatedRefreshTokens[0]!;
  const file = path.join(dir, 'cam.oauth.json');
  assert.equal(m1.tokenFile, file);
  const st = await stat(file);
  assert.equal(st.mode & 0o777, 0o600);
  const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  assert.equal(saved.refresh_token, rotated1);
  assert.ok(!(await readFile(file, 'utf8')).includes(REFRESH), 'the config token itself is not written');
  assert.ok(!(await readFile(file, 'utf8')).includes(s.issued[0]!), 'no access token on disk');

  // Same process: the next refresh uses the rotated token (the server no longer accepts the config one).
  m1.invalidate();
  await m1.getAccessToken();
  assert.equal(s.requests[1]!.form.refresh_token, rotated1);
  const rotated2 = s.rotatedRefreshTokens[1]!;
  assert.equal((JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>).refresh_token, rotated2);

  // Restart: a new manager with the same config value loads the saved token.
  const m2 = manager(s, dir);
  const t = await m2.getAccessToken();
  assert.equal(t, s.issued[2]);
  assert.equal(s.requests[2]!.form.refresh_token, rotated2);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('a new refresh token in the config wins over a token rotated from an older one', { timeout: 20_000 }, async () => {
  const s = await server({ rotate: true });
  const dir = await stateDir();
  await manager(s, dir).getAccessToken();
  // The user consents again and puts a new token in the config; the server accepts it.
  const fresh = 'rt-Unique-new-consent-7f7f';
  s.validRefreshTokens.add(fresh);
  const m = manager(s, dir, { refreshToken: fresh });
  await m.getAccessToken();
  assert.equal(s.requests[1]!.form.refresh_token, fresh);
});

test('an unreadable or corrupt token file falls back to the config token', { timeout: 20_000 }, async () => {
  const s = await server();
  const dir = await stateDir();
  await writeFile(path.join(dir, 'cam.oauth.json'), '{not json', { mode: 0o600 });
  await manager(s, dir).getAccessToken();
  assert.equal(s.requests[0]!.form.refresh_token, REFRESH);
});

test('a token file readable by others is tightened to 0600', { timeout: 20_000 }, async () => {
  const s = await server({ rotate: true });
  const dir = await stateDir();
  await manager(s, dir).getAccessToken();
  const file = path.join(dir, 'cam.oauth.json');
  const { chmod } = await import('node:fs/promises');
  await chmod(file, 0o644);
  const lines: string[] = [];
  const logger = { debug() {}, info() {}, warn: (m: string) => void lines.push(m), error() {}, child() { return logger; } };
  await manager(s, dir, { logger }).getAccessToken();
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.ok(lines.some((l) => /readable by others/.test(l)));
  assert.equal(s.requests[1]!.form.refresh_token, s.rotatedRefreshTokens[0]);
});

test('invalid_grant: clear typed error, then fail fast for an hour without HTTP', { timeout: 20_000 }, async () => {
  const s = await server();
  s.validRefreshTokens.clear();
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const e = await rejection(m.getAccessToken());
  assert.equal(e.code, 'EOAUTH_GRANT');
  assert.equal(e.retry, 'hard');
  assert.equal(e.oauthError, 'invalid_grant');
  assert.equal(e.status, 400);
  assert.equal(e.cached, false);
  assert.equal(e.retryAt, c.now() + 3_600_000);
  assert.match(e.message, /mailbox "cam"/);
  assert.match(e.message, /invalid_grant \(Token has been expired or revoked\.\)/);
  assert.match(e.message, /authorise again/);
  assert.match(e.message, /next attempt in 60 min/);
  assertNoSecrets(e.message);
  for (let i = 0; i < 50; i++) {
    c.advance(60_000 - 1);
    if (c.now() >= e.retryAt) break;
    const again = await rejection(m.getAccessToken());
    assert.equal(again.code, 'EOAUTH_GRANT');
    assert.equal(again.cached, true);
    assert.match(again.message, /not retried yet/);
  }
  assert.equal(s.requests.length, 1, 'no request inside the hard backoff window');
  c.set(e.retryAt);
  await rejection(m.getAccessToken());
  assert.equal(s.requests.length, 2);
});

test('server errors back off from 60 s, doubling, capped at 1 h; success resets', { timeout: 30_000 }, async () => {
  const s = await server();
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    s.script({ status: 503, body: '<html>Service Unavailable</html>', headers: { 'content-type': 'text/html' } });
    const e = await rejection(m.getAccessToken());
    assert.equal(e.code, 'EOAUTH_SERVER');
    assert.equal(e.retry, 'later');
    assert.match(e.message, /HTTP 503 with a text\/html body of \d+ bytes/);
    waits.push(e.retryAt - c.now());
    // Hammering inside the window costs nothing.
    for (let k = 0; k < 10; k++) assert.equal((await rejection(m.getAccessToken())).cached, true);
    c.set(e.retryAt);
  }
  assert.deepEqual(waits, [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
  assert.equal(s.requests.length, 8);
  await m.getAccessToken();
  s.script({ status: 500, json: { error: 'server_error' } });
  m.invalidate();
  const e = await rejection(m.getAccessToken());
  assert.equal(e.retryAt - c.now(), 60_000);
});

test('429 with Retry-After waits at least that long', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ status: 429, json: { error: 'rate_limited' }, headers: { 'retry-after': '900' } });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const e = await rejection(m.getAccessToken());
  assert.equal(e.code, 'EOAUTH_SERVER');
  assert.equal(e.retryAt - c.now(), 900_000);
});

test('invalid_client and a bare 401 are client errors with a hint at client_id/client_secret', { timeout: 20_000 }, async () => {
  const s = await server();
  const m = manager(s, await stateDir(), { clientSecret: 'cs-Unique-wrong-secret-00' });
  const e = await rejection(m.getAccessToken());
  assert.equal(e.code, 'EOAUTH_CLIENT');
  assert.equal(e.retry, 'hard');
  assert.match(e.message, /invalid_client/);
  assert.match(e.message, /client_secret/);
  assertNoSecrets(e.message, ['cs-Unique-wrong-secret-00']);

  const s2 = await server();
  s2.script({ status: 401, body: '' });
  const e2 = await rejection(manager(s2, await stateDir()).getAccessToken());
  assert.equal(e2.code, 'EOAUTH_CLIENT');
  assert.match(e2.message, /HTTP 401 with an empty body/);
});

test('invalid_scope is a request error', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ status: 400, json: { error: 'invalid_scope', error_description: 'AADSTS70011: The provided value for scope is not valid.' } });
  const e = await rejection(manager(s, await stateDir()).getAccessToken());
  assert.equal(e.code, 'EOAUTH_REQUEST');
  assert.match(e.message, /invalid_scope \(AADSTS70011/);
  assert.match(e.message, /oauth\.scope/);
});

test('a 200 that is not JSON, or has no access_token, or a non-Bearer type, is a response error', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ status: 200, body: '<html>captive portal</html>', headers: { 'content-type': 'text/html' } });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const e1 = await rejection(m.getAccessToken());
  assert.equal(e1.code, 'EOAUTH_RESPONSE');
  assert.match(e1.message, /not a JSON token response/);
  c.set(e1.retryAt);
  s.script({ status: 200, json: { token_type: 'Bearer', expires_in: 3600 } });
  const e2 = await rejection(m.getAccessToken());
  assert.match(e2.message, /without an access_token/);
  c.set(e2.retryAt);
  s.script({ status: 200, json: { access_token: 'at-mac-type', token_type: 'mac' } });
  const e3 = await rejection(m.getAccessToken());
  assert.match(e3.message, /type mac, not Bearer/);
  assert.ok(!e3.message.includes('at-mac-type'));
});

test('a redirect is not followed', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ status: 302, headers: { location: 'https://evil.example/steal' } });
  const e = await rejection(manager(s, await stateDir()).getAccessToken());
  assert.equal(e.code, 'EOAUTH_RESPONSE');
  assert.match(e.message, /redirect/);
  assert.equal(s.requests.length, 1);
});

test('a hanging endpoint times out with EOAUTH_TIMEOUT', { timeout: 20_000 }, async () => {
  const s = await server();
  s.script({ hang: true });
  const t0 = Date.now();
  const e = await rejection(manager(s, await stateDir(), { timeoutMs: 400 }).getAccessToken());
  assert.equal(e.code, 'EOAUTH_TIMEOUT');
  assert.ok(Date.now() - t0 < 5_000);
  assert.match(e.message, /no answer within 400 ms/);
});

test('connection refused and an untrusted certificate are network errors naming the cause', { timeout: 20_000 }, async () => {
  const s = await server();
  const url = s.url;
  await s.close();
  const e = await rejection(manager(s, await stateDir(), { tokenUrl: url }).getAccessToken());
  assert.equal(e.code, 'EOAUTH_NETWORK');
  assert.match(e.message, /ECONNREFUSED/);

  const s2 = await server();
  const e2 = await rejection(manager(s2, await stateDir(), { ca: undefined }).getAccessToken());
  assert.equal(e2.code, 'EOAUTH_NETWORK');
  assert.match(e2.message, /CERT|certificate/i);
  assert.equal(s2.requests.length, 0, 'nothing was sent to an unverified server');
});

test('plain http is refused for a remote token URL without any request, allowed on loopback', { timeout: 20_000 }, async () => {
  const e = await rejection(manager({ url: 'http://oauth.example.invalid/token' } as TokenServer, await stateDir(), { tokenUrl: 'http://oauth.example.invalid/token' }).getAccessToken());
  assert.equal(e.code, 'EOAUTH_CONFIG');
  assert.match(e.message, /must use https/);

  const s = await server({ plainHttp: true });
  const m = manager(s, await stateDir(), { tokenUrl: s.httpUrl! });
  assert.equal(await m.getAccessToken(), s.issued[0]);
});

test('an injected fetch (global fetch) works as the transport', { timeout: 20_000 }, async () => {
  const s = await server({ plainHttp: true });
  const m = manager(s, await stateDir(), { tokenUrl: s.httpUrl!, fetchImpl: globalThis.fetch as never });
  assert.equal(await m.getAccessToken(), s.issued[0]);
  s.script({ status: 400, json: { error: 'invalid_grant' } });
  m.invalidate();
  const e = await rejection(m.getAccessToken());
  assert.equal(e.code, 'EOAUTH_GRANT');
});

test('when a refresh fails while the old token is still valid, the old token is used', { timeout: 20_000 }, async () => {
  const s = await server({ expiresIn: 3600 });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  const first = await m.getAccessToken();
  c.advance(3400 * 1000); // inside the refresh window, 200 s left
  s.script({ status: 503, body: 'down' });
  assert.equal(await m.getAccessToken(), first);
  assert.equal(await m.getAccessToken(), first); // backoff window: no request, old token
  assert.equal(s.requests.length, 2);
  c.advance(200 * 1000); // expired and past the 60 s backoff window: a new request is made
  assert.notEqual(await m.getAccessToken(), first);
  assert.equal(s.requests.length, 3);
});

test('an expired token is never handed out during a backoff window', { timeout: 20_000 }, async () => {
  const s = await server({ expiresIn: 100 });
  const c = clock();
  const m = manager(s, await stateDir(), { now: c.now });
  await m.getAccessToken();
  c.advance(99_000);
  s.script({ status: 503, body: 'down' });
  const e = await rejection(m.getAccessToken());
  assert.equal(e.code, 'EOAUTH_SERVER');
  const e2 = await rejection(m.getAccessToken());
  assert.equal(e2.cached, true);
});

test('error messages never carry secrets, even when the endpoint echoes them', { timeout: 20_000 }, async () => {
  const s = await server();
  const echo = `bad token ${REFRESH} for ${CLIENT_SECRET} / ${Buffer.from(REFRESH).toString('base64')}`;
  s.script({ status: 400, json: { error: 'invalid_grant', error_description: echo } });
  const e = await rejection(manager(s, await stateDir()).getAccessToken());
  assertNoSecrets(e.message);
  assertNoSecrets(String(e.stack));
  const lines: string[] = [];
  const { createLogger } = await import('../../src/log.js');
  const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
  const s2 = await server({ rotate: true });
  const m = manager(s2, await stateDir(), { logger });
  await m.getAccessToken();
  m.invalidate();
  s2.script({ status: 500, json: { error: 'server_error', error_description: `oops ${s2.issued[0]}` } });
  await rejection(m.getAccessToken());
  assert.ok(lines.length >= 3);
  assertNoSecrets(lines.join('\n'), [...s2.issued, ...s2.rotatedRefreshTokens]);
});

test('the token file is written under the state dir even when it does not exist yet', { timeout: 20_000 }, async () => {
  const s = await server({ rotate: true });
  const dir = path.join(await stateDir(), 'not', 'yet');
  await manager(s, dir).getAccessToken();
  assert.equal((await stat(path.join(dir, 'cam.oauth.json'))).mode & 0o777, 0o600);
});

test('a failing save of the rotated token is logged and the access token still returned', { timeout: 20_000 }, async () => {
  const s = await server({ rotate: true });
  const dir = await stateDir();
  await writeFile(path.join(dir, 'blocker'), 'x');
  const errors: string[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (m: string) => void errors.push(m), child() { return logger; } };
  const m = manager(s, path.join(dir, 'blocker'), { logger }); // a file where the dir should be
  assert.equal(await m.getAccessToken(), s.issued[0]);
  assert.ok(errors.some((l) => /could not save the rotated refresh token/.test(l)));
  // The rotated token is still used in memory.
  m.invalidate();
  await m.getAccessToken();
  assert.equal(s.requests[1]!.form.refresh_token, s.rotatedRefreshTokens[0]);
});
