// An OAuth mailbox end to end through the real CLI: token from the local HTTPS endpoint, XOAUTH2 against a scripted POP3 peer, alerts on a real Mosquitto; refresh-once on a refused token, rotation across runs, no POP3 session without a token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from '../support/certs.js';
import { serveMailbox, startHostilePop3, tlsMaterial, type HostileServer } from '../support/hostile-pop3.js';
import { popBearerAuth, startTokenServer, type BearerAttempt, type TokenServer, type TokenServerOptions } from '../support/token-server.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { runCli, startDaemon, until, CAMERA_MOTION_RULE } from '../support/lab.js';

const USER = 'alice@example.com';
const CLIENT_SECRET = 'cs-agent-Unique-4d5e6f';
const REFRESH = 'rt-agent-Unique-a1b2c3';

let dir: string;
let certs: TestCerts;
let mosquitto: MosquittoServer;
let sub: Subscriber;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-oauth-agent-'));
  certs = await makeTestCA(path.join(dir, 'tls'));
  mosquitto = await startMosquitto();
  sub = await subscribe(mosquitto.url, ['pop2mqtt/#']);
});
after(async () => {
  await sub?.close();
  await mosquitto?.stop();
  await rm(dir, { recursive: true, force: true });
});

const alarm = (cam: number, id: string) =>
  Buffer.from(`From: NVR <nvr@nvr.local>\r\nTo: ${USER}\r\nSubject: ALARM: Motion Detected Camera ${cam}\r\nMessage-ID: <${id}@nvr.local>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nmotion\r\n`);

interface Setup {
  ts: TokenServer;
  pop: HostileServer;
  attempts: BearerAttempt[];
  cfg: string;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

let n = 0;
async function setup(o: { tokens?: TokenServerOptions; username?: string; schedule?: string; messages?: Buffer[] } = {}): Promise<Setup> {
  const id = ++n;
  const ts = await startTokenServer({ certs, clientId: 'cid.apps.example', clientSecret: CLIENT_SECRET, refreshToken: REFRESH, accessTokenPrefix: `at-agent${id}`, ...o.tokens });
  const attempts: BearerAttempt[] = [];
  const messages = o.messages ?? [alarm(id, `m${id}`)];
  const pop = await startHostilePop3(
    (c) => serveMailbox(c, {
      capa: ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL XOAUTH2'],
      capaAfterLogin: ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'],
      messages, uids: messages.map((_, i) => `u${id}-${i}`),
      handle: popBearerAuth(ts, { user: USER, attempts }),
    }).then(() => undefined),
    { implicitTls: tlsMaterial(certs) },
  );
  const cfg = path.join(dir, `oauth-${id}.yaml`);
  await writeFile(cfg, `mqtt:
  url: ${mosquitto.url}
  base_topic: pop2mqtt
state_dir: ./state-${id}
log_level: debug
mailboxes:
  - id: gmail${id}
    host: 127.0.0.1
    port: ${pop.port}
    tls: implicit
    ca_file: ${certs.caFile}
    username: ${o.username ?? USER}
    auth: xoauth2
    oauth:
      token_url: ${ts.url}
      client_id: cid.apps.example
      client_secret: \${OAUTH_CLIENT_SECRET}
      refresh_token: \${OAUTH_REFRESH_TOKEN}
    schedule: "${o.schedule ?? '0 0 1 1 *'}"
    existing: process
rules:
${CAMERA_MOTION_RULE}`, { mode: 0o600 });
  return {
    ts, pop, attempts, cfg,
    // The token endpoint's certificate is signed by the test CA: trusted the way a user would (NODE_EXTRA_CA_CERTS).
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile, OAUTH_CLIENT_SECRET: CLIENT_SECRET, OAUTH_REFRESH_TOKEN: REFRESH, POP2MQTT_LOG_LEVEL: 'debug' },
    close: async () => {
      await pop.close();
      await ts.close();
    },
  };
}

function once(s: Setup) {
  return runCli(['once', '--config', s.cfg], { env: s.env, cwd: dir, timeoutMs: 60_000 });
}

function assertNoSecrets(text: string, s: Setup): void {
  for (const secret of [CLIENT_SECRET, REFRESH, ...s.ts.issued, ...s.ts.rotatedRefreshTokens]) {
    assert.ok(!text.includes(secret), `output contains a secret (${secret.slice(0, 6)}…):\n${text}`);
    assert.ok(!text.includes(Buffer.from(secret).toString('base64').replace(/=+$/, '')), 'output contains a base64 secret');
  }
}

test('once: token from the endpoint, XOAUTH2 login, alert published', { timeout: 90_000 }, async () => {
  const s = await setup();
  try {
    const r = await once(s);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.ts.requests.length, 1);
    assert.equal(s.ts.requests[0]!.form.grant_type, 'refresh_token');
    assert.equal(s.ts.requests[0]!.form.client_secret, CLIENT_SECRET);
    assert.equal(s.attempts.length, 1);
    assert.equal(s.attempts[0]!.ok, true);
    assert.equal(s.attempts[0]!.token, s.ts.issued[0]);
    const alert = await sub.waitFor((m) => m.topic === `pop2mqtt/alerts/Camera ${n}`, 10_000);
    assert.equal((alert.json as Record<string, unknown>).mailbox, `gmail${n}`);
    assert.match(r.stderr, /access token refreshed/);
    assertNoSecrets(r.stdout + r.stderr, s);
  } finally {
    await s.close();
  }
});

test('a token refused by the POP3 server is dropped and the login retried once with a fresh one', { timeout: 90_000 }, async () => {
  const s = await setup();
  // The first token is revoked right after it is issued (as when a user revokes access, or a token is cut short).
  s.ts.script((req, srv) => {
    const reply = srv.grant(req);
    srv.validAccessTokens.delete((reply.json as { access_token: string }).access_token);
    return reply;
  });
  try {
    const r = await once(s);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.ts.requests.length, 2);
    assert.deepEqual(s.attempts.map((a) => [a.token, a.ok]), [[s.ts.issued[0], false], [s.ts.issued[1], true]]);
    assert.match(r.stderr, /retrying once with a fresh access token/);
    await sub.waitFor((m) => m.topic === `pop2mqtt/alerts/Camera ${n}`, 10_000);
    assertNoSecrets(r.stdout + r.stderr, s);
  } finally {
    await s.close();
  }
});

test('the retry happens only once: a login refused twice fails the poll with EAUTH', { timeout: 90_000 }, async () => {
  const s = await setup({ username: 'mallory@example.com' });
  try {
    const r = await once(s);
    assert.equal(r.code, 1);
    assert.equal(s.attempts.length, 2);
    assert.equal(s.ts.requests.length, 2);
    assert.match(r.stderr, /mailbox gmail\d+ failed: \[EAUTH\]/);
    assertNoSecrets(r.stdout + r.stderr, s);
  } finally {
    await s.close();
  }
});

test('invalid_grant: a clear error, no POP3 session is opened', { timeout: 90_000 }, async () => {
  const s = await setup();
  s.ts.validRefreshTokens.clear();
  try {
    const r = await once(s);
    assert.equal(r.code, 1);
    assert.equal(s.ts.requests.length, 1);
    assert.equal(s.pop.conns.length, 0, 'no POP3 connection without a token');
    assert.match(r.stderr, /\[EOAUTH_GRANT\] OAuth token refresh for mailbox "gmail\d+" failed: .*invalid_grant \(Token has been expired or revoked\.\).*authorise again/);
    assertNoSecrets(r.stdout + r.stderr, s);
  } finally {
    await s.close();
  }
});

test('a rotated refresh token is saved 0600 and used by the next run (the old one is no longer accepted)', { timeout: 90_000 }, async () => {
  const s = await setup({ tokens: { rotate: true } });
  try {
    const r1 = await once(s);
    assert.equal(r1.code, 0, r1.stderr);
    const file = path.join(dir, `state-${n}`, `gmail${n}.oauth.json`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { refresh_token: string }).refresh_token, s.ts.rotatedRefreshTokens[0]);
    const r2 = await once(s);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(s.ts.requests.length, 2);
    assert.equal(s.ts.requests[1]!.form.refresh_token, s.ts.rotatedRefreshTokens[0]);
    assert.equal(s.attempts.filter((a) => a.ok).length, 2);
    assertNoSecrets(r1.stdout + r1.stderr + r2.stdout + r2.stderr, s);
  } finally {
    await s.close();
  }
});

test('run: the token is cached across polls; a server-side revocation costs one refresh and the polls go on', { timeout: 120_000 }, async () => {
  const s = await setup({ schedule: '* * * * * *' });
  const d = startDaemon(['run', '--config', s.cfg], { env: s.env, cwd: dir });
  try {
    await until(() => s.attempts.filter((a) => a.ok).length >= 3, 30_000, 'three polls');
    assert.equal(s.ts.requests.length, 1, 'one token for several polls');
    s.ts.revokeAccessTokens();
    const okBefore = s.attempts.filter((a) => a.ok).length;
    await until(() => s.attempts.filter((a) => a.ok).length >= okBefore + 2, 30_000, 'two more successful polls after the revocation');
    assert.equal(s.ts.requests.length, 2, 'exactly one refresh after the revocation');
    assert.equal(s.attempts.filter((a) => !a.ok).length, 1, 'one refused login');
    assert.match(d.output(), /retrying once with a fresh access token/);
  } finally {
    d.child.kill('SIGTERM');
    const exit = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    if (exit === null) d.child.kill('SIGKILL');
    await s.close();
  }
  assertNoSecrets(d.output(), s);
});

test('probe: fetches a token like the agent, logs in with XOAUTH2, counts messages; a refused refresh token is shown as EOAUTH_*, exit 1', { timeout: 90_000 }, async () => {
  const s = await setup({ messages: [alarm(1, 'p1'), alarm(2, 'p2')] });
  try {
    const r = await runCli(['probe', '--config', s.cfg, '--json'], { env: s.env, cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const p = JSON.parse(r.stdout)[0] as Record<string, unknown>;
    assert.equal(p.loggedIn, true);
    assert.equal(p.mechanismChosen, 'xoauth2');
    assert.equal(p.messages, 2);
    assert.equal(s.ts.requests.length, 1, 'one token request');
    assert.deepEqual(s.attempts.map((a) => [a.token, a.ok]), [[s.ts.issued[0], true]]);
    assertNoSecrets(r.stdout + r.stderr, s);
  } finally {
    await s.close();
  }
  const bad = await setup({ tokens: { refreshToken: 'some-other-refresh-token' } });
  try {
    const r = await runCli(['probe', '--config', bad.cfg], { env: bad.env, cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /ERROR \[EOAUTH_[A-Z_]+\]/);
    assert.match(r.stdout, /logged in\s+no/);
    assert.equal(bad.attempts.length, 0, 'no POP3 login without a token');
    assertNoSecrets(r.stdout + r.stderr, bad);
  } finally {
    await bad.close();
  }
});
