// The agent's per-mailbox token registry: which mailboxes get OAuth hooks, and that a reload keeps the cached token unless the OAuth settings changed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MailboxTokens, type OAuthMailboxSettings } from '../../src/oauth/index.js';
import { silentLogger } from '../../src/log.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';

const servers: TokenServer[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function setup() {
  const ts = await startTokenServer({ plainHttp: true, clientId: 'cid', refreshToken: 'rt-registry-1' });
  servers.push(ts);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-oauth-reg-'));
  dirs.push(dir);
  const mb = (over: Partial<OAuthMailboxSettings> = {}): OAuthMailboxSettings => ({
    id: 'm1', auth: 'xoauth2', oauth: { token_url: ts.httpUrl!, client_id: 'cid', refresh_token: 'rt-registry-1' }, ...over,
  });
  return { ts, dir, mb, reg: new MailboxTokens({ logger: silentLogger }) };
}

test('password mailboxes get no hooks; OAuth mechanisms and auto without a password do', { timeout: 20_000 }, async () => {
  const { dir, mb, reg } = await setup();
  assert.equal(reg.hooksFor({ id: 'p', auth: 'auto', password: 'pw-123' }, dir), undefined);
  assert.equal(reg.hooksFor({ id: 'p', auth: 'scram-sha-256', password: 'pw-123' }, dir), undefined);
  assert.equal(reg.hooksFor(mb({ auth: 'auto', password: 'pw-123' }), dir), undefined, 'auto with a password uses the password');
  assert.ok(reg.hooksFor(mb(), dir));
  assert.ok(reg.hooksFor(mb({ auth: 'oauthbearer' }), dir));
  assert.ok(reg.hooksFor(mb({ auth: 'auto' }), dir));
  assert.equal(reg.hooksFor(mb({ oauth: { token_url: 'https://x/t', client_id: 'cid' } }), dir), undefined, 'incomplete settings');
});

test('a reload with unchanged settings keeps the cached token; changed settings start a new manager', { timeout: 20_000 }, async () => {
  const { ts, dir, mb, reg } = await setup();
  const h1 = reg.hooksFor(mb(), dir)!;
  const t1 = await h1.accessToken();
  const h2 = reg.hooksFor(mb(), dir)!; // reload, same settings
  assert.equal(await h2.accessToken(), t1);
  assert.equal(ts.requests.length, 1);
  const h3 = reg.hooksFor(mb({ oauth: { token_url: ts.httpUrl!, client_id: 'cid', refresh_token: 'rt-registry-1', scope: 'pop' } }), dir)!;
  assert.notEqual(await h3.accessToken(), t1);
  assert.equal(ts.requests.length, 2);
  assert.equal(ts.requests[1]!.form.scope, 'pop');
});

test('invalidateAccessToken drops the cached token of that mailbox only', { timeout: 20_000 }, async () => {
  const { ts, dir, mb, reg } = await setup();
  const a = reg.hooksFor(mb({ id: 'a' }), dir)!;
  const b = reg.hooksFor(mb({ id: 'b' }), dir)!;
  const ta = await a.accessToken();
  const tb = await b.accessToken();
  a.invalidateAccessToken();
  assert.notEqual(await a.accessToken(), ta);
  assert.equal(await b.accessToken(), tb);
  assert.equal(ts.requests.length, 3);
});
