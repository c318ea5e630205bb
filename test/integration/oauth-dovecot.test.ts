// OAUTHBEARER and XOAUTH2 against a real Dovecot 2.3 whose oauth2 passdb checks tokens by RFC 7662 introspection at the local token server; the CLI end to end with Mosquitto.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pop3Client, Pop3Error } from '../../src/pop3/index.js';
import { OAuthTokenManager } from '../../src/oauth/index.js';
import { makeTestCA, type TestCerts } from '../support/certs.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { runCli } from '../support/lab.js';

const USER = 'alice';
const CLIENT_SECRET = 'cs-dovecot-Unique-31c4';
const REFRESH = 'rt-dovecot-Unique-8e2d';

let dir: string;
let certs: TestCerts;
let ts: TokenServer;
let dovecot: DovecotServer;
let mosquitto: MosquittoServer;
let sub: Subscriber;
let ca: Buffer;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-oauth-dovecot-'));
  await chmod(dir, 0o755); // Dovecot's auth process reads the oauth2 settings file
  certs = await makeTestCA(path.join(dir, 'tls'));
  ca = await readFile(certs.caFile);
  ts = await startTokenServer({ certs, plainHttp: true, clientId: 'cid', clientSecret: CLIENT_SECRET, refreshToken: REFRESH, username: USER, accessTokenPrefix: 'at-dovecot' });
  const oauthConf = path.join(dir, 'dovecot-oauth2.conf.ext');
  // Dovecot's HTTP client reaches the introspection endpoint over plain HTTP on loopback.
  await writeFile(oauthConf, [
    'introspection_mode = post',
    `introspection_url = ${ts.httpIntrospectUrl}`,
    'username_attribute = username',
    'active_attribute = active',
    'active_value = true',
    '',
  ].join('\n'), { mode: 0o644 });
  [dovecot, mosquitto] = await Promise.all([
    startDovecot({
      users: [{ user: USER, pass: 'pw-not-used-here-1' }], certs, authMechanisms: 'plain oauthbearer xoauth2',
      extraConf: `passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = ${oauthConf}\n}\n`,
    }),
    startMosquitto(),
  ]);
  sub = await subscribe(mosquitto.url, ['pop2mqtt/alerts/#']);
  await dovecot.deliver(USER, 'From: NVR <nvr@nvr.local>\r\nTo: alice@home.example\r\nSubject: ALARM: Motion Detected Camera 7\r\nMessage-ID: <dv1@nvr.local>\r\n\r\nmotion\r\n');
});
after(async () => {
  await sub?.close();
  await Promise.allSettled([dovecot?.stop(), mosquitto?.stop(), ts?.close()]);
  await rm(dir, { recursive: true, force: true });
});

function manager(): OAuthTokenManager {
  return new OAuthTokenManager({ mailboxId: 'dovecot', tokenUrl: ts.url, clientId: 'cid', clientSecret: CLIENT_SECRET, refreshToken: REFRESH, stateDir: dir, ca: ts.ca });
}

async function connect(): Promise<Pop3Client> {
  return Pop3Client.connect({ host: '127.0.0.1', port: dovecot.tlsPort, tls: 'implicit', ca, timeouts: { connectMs: 5000, greetingMs: 5000, commandMs: 10_000, sessionMs: 30_000 } });
}

for (const mech of ['oauthbearer', 'xoauth2'] as const) {
  test(`Dovecot accepts ${mech.toUpperCase()} with a token it introspects`, { timeout: 30_000 }, async () => {
    const token = await manager().getAccessToken();
    const before = ts.introspections.length;
    const c = await connect();
    const login = await c.login({ username: USER, accessToken: token, mechanism: mech });
    assert.equal(login.mechanism, mech);
    const stat = await c.stat();
    assert.equal(stat.count, 1);
    await c.quit();
    assert.ok(ts.introspections.length > before, 'Dovecot asked the introspection endpoint');
    assert.equal(ts.introspections.at(-1)!.form.token, token);
  });

  test(`Dovecot refuses a revoked token over ${mech.toUpperCase()}: EAUTH`, { timeout: 30_000 }, async () => {
    const token = await manager().getAccessToken();
    ts.validAccessTokens.delete(token);
    const c = await connect();
    const err = await c.login({ username: USER, accessToken: token, mechanism: mech }).then(() => null, (e: unknown) => e);
    c.destroy();
    assert.ok(err instanceof Pop3Error, String(err));
    assert.equal(err.code, 'EAUTH');
    assert.ok(!err.message.includes(token));
  });
}

test('the CLI polls a Dovecot OAUTHBEARER mailbox end to end', { timeout: 90_000 }, async () => {
  const cfg = path.join(dir, 'config.yaml');
  await writeFile(cfg, `mqtt:
  url: ${mosquitto.url}
state_dir: ./state
mailboxes:
  - id: dovecot
    host: 127.0.0.1
    port: ${dovecot.tlsPort}
    ca_file: ${certs.caFile}
    username: ${USER}
    auth: oauthbearer
    oauth:
      token_url: ${ts.url}
      client_id: cid
      client_secret: \${OAUTH_CLIENT_SECRET}
      refresh_token: \${OAUTH_REFRESH_TOKEN}
    existing: process
rules:
  - name: camera-motion
    when:
      subject: { regex: "^ALARM: (?<event>.+?) (?<camera>Camera \\\\d+)$" }
    publish:
      topic: "alerts/{{camera}}"
`, { mode: 0o600 });
  const requests = ts.requests.length;
  const r = await runCli(['once', '--config', cfg], {
    cwd: dir, timeoutMs: 60_000,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile, OAUTH_CLIENT_SECRET: CLIENT_SECRET, OAUTH_REFRESH_TOKEN: REFRESH },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ts.requests.length, requests + 1);
  const alert = await sub.waitFor((m) => m.topic === 'pop2mqtt/alerts/Camera 7', 10_000);
  assert.equal((alert.json as Record<string, unknown>).mailbox, 'dovecot');
  const log = await dovecot.logTail(50);
  assert.match(log, /Login: user=<alice>, method=OAUTHBEARER/);
  for (const s of [CLIENT_SECRET, REFRESH, ...ts.issued]) assert.ok(!(r.stdout + r.stderr).includes(s));
});
