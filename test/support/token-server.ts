// A local OAuth2 token endpoint (and RFC 7662 introspection endpoint) on 127.0.0.1 over HTTPS with the test CA: scriptable replies, every request recorded.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from './certs.js';
import { removeOnExit } from './daemon.js';

export interface TokenRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The form fields of the body (application/x-www-form-urlencoded). */
  form: Record<string, string>;
  body: string;
  at: number;
}

/** A scripted reply. `hang` never answers (for timeouts); `destroy` drops the connection. */
export interface TokenReply {
  status?: number;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  hang?: boolean;
  destroy?: boolean;
}

export type ScriptStep = TokenReply | ((req: TokenRequest, server: TokenServer) => TokenReply | Promise<TokenReply>);

export interface TokenServerOptions {
  clientId?: string;
  /** Required client secret; undefined accepts a public client (no secret). */
  clientSecret?: string;
  /** The refresh token accepted at first. */
  refreshToken?: string;
  /** expires_in of issued access tokens (seconds); default 3600. */
  expiresIn?: number;
  /** Issue a new refresh token with every grant; true stops accepting the old one (strict), 'keep-old' still accepts it. */
  rotate?: boolean | 'keep-old';
  /** Prefix of issued access tokens (unique secrets for leak tests); default "at". */
  accessTokenPrefix?: string;
  /** Username reported by introspection for valid tokens. */
  username?: string;
  /** Also listen on plain HTTP (httpUrl/httpIntrospectUrl), e.g. for Dovecot's introspection client. */
  plainHttp?: boolean;
  /** Reuse TLS material; default a fresh test CA in a temp dir. */
  certs?: TestCerts;
}

export interface TokenServer {
  /** https://127.0.0.1:PORT/token */
  url: string;
  /** https://127.0.0.1:PORT/introspect */
  introspectUrl: string;
  httpUrl?: string;
  httpIntrospectUrl?: string;
  caFile: string;
  ca: Buffer;
  /** Requests to /token, in order. */
  readonly requests: TokenRequest[];
  /** Requests to /introspect, in order. */
  readonly introspections: TokenRequest[];
  /** Access tokens issued, in order. */
  readonly issued: string[];
  /** Refresh tokens issued by rotation, in order. */
  readonly rotatedRefreshTokens: string[];
  /** Refresh tokens currently accepted. */
  readonly validRefreshTokens: Set<string>;
  /** Access tokens currently accepted by introspect() / isValidAccessToken(). */
  readonly validAccessTokens: Set<string>;
  /** Queue replies: each /token request takes the next step; when the queue is empty the normal grant logic answers. */
  script(...steps: ScriptStep[]): void;
  /** The normal grant logic, for use inside a script step. */
  grant(req: TokenRequest): TokenReply;
  isValidAccessToken(token: string): boolean;
  /** Forget every issued access token (as after a server-side revocation). */
  revokeAccessTokens(): void;
  close(): Promise<void>;
}

export async function startTokenServer(o: TokenServerOptions = {}): Promise<TokenServer> {
  let certs = o.certs;
  if (!certs) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-token-'));
    removeOnExit(dir);
    certs = await makeTestCA(dir);
  }
  const [key, cert, ca] = await Promise.all([readFile(certs.keyFile), readFile(certs.certFile), readFile(certs.caFile)]);
  const clientId = o.clientId ?? 'test-client';
  const queue: ScriptStep[] = [];
  let n = 0;

  const server: TokenServer = {
    url: '', introspectUrl: '', caFile: certs.caFile, ca,
    requests: [], introspections: [], issued: [], rotatedRefreshTokens: [],
    validRefreshTokens: new Set(o.refreshToken ? [o.refreshToken] : ['test-refresh-token']),
    validAccessTokens: new Set(),
    script: (...steps) => void queue.push(...steps),
    grant(req) {
      const f = req.form;
      if (f.grant_type !== 'refresh_token') return { status: 400, json: { error: 'unsupported_grant_type' } };
      if (f.client_id !== clientId || (o.clientSecret !== undefined && f.client_secret !== o.clientSecret)) {
        return { status: 401, json: { error: 'invalid_client', error_description: 'client authentication failed' } };
      }
      if (!f.refresh_token || !server.validRefreshTokens.has(f.refresh_token)) {
        return { status: 400, json: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } };
      }
      n++;
      const token = `${o.accessTokenPrefix ?? 'at'}-${n}-${randomBytes(12).toString('hex')}`;
      server.issued.push(token);
      server.validAccessTokens.add(token);
      const json: Record<string, unknown> = { access_token: token, token_type: 'Bearer', expires_in: o.expiresIn ?? 3600 };
      if (f.scope) json.scope = f.scope;
      if (o.rotate) {
        const next = `rt-${n}-${randomBytes(12).toString('hex')}`;
        if (o.rotate !== 'keep-old') server.validRefreshTokens.delete(f.refresh_token);
        server.validRefreshTokens.add(next);
        server.rotatedRefreshTokens.push(next);
        json.refresh_token = next;
      }
      return { status: 200, json };
    },
    isValidAccessToken: (t) => server.validAccessTokens.has(t),
    revokeAccessTokens: () => server.validAccessTokens.clear(),
    close: async () => {},
  };

  const introspect = (req: TokenRequest): TokenReply => {
    const url = new URL(req.path, 'http://x');
    const auth = req.headers.authorization;
    const token = req.form.token ?? url.searchParams.get('token') ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : url.pathname.split('/').pop());
    if (token && server.validAccessTokens.has(token)) return { status: 200, json: { active: true, username: o.username ?? 'alice', token_type: 'Bearer' } };
    return { status: 200, json: { active: false } };
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const rec: TokenRequest = {
          method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, at: Date.now(),
          form: Object.fromEntries(new URLSearchParams(String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') ? body : '')),
        };
        let reply: TokenReply;
        if (rec.path.startsWith('/introspect')) {
          server.introspections.push(rec);
          reply = introspect(rec);
        } else if (rec.path === '/token') {
          server.requests.push(rec);
          const step = queue.shift();
          reply = step === undefined ? server.grant(rec) : typeof step === 'function' ? await step(rec, server) : step;
        } else {
          reply = { status: 404, body: 'not found' };
        }
        if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
        if (reply.hang) return; // the client's timeout must end this; close() destroys the socket
        if (reply.destroy) {
          req.socket.destroy();
          return;
        }
        const payload = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.body ?? '');
        const headers: Record<string, string> = {
          'content-type': reply.json !== undefined ? 'application/json; charset=utf-8' : 'text/plain',
          'cache-control': 'no-store',
          ...reply.headers,
        };
        res.writeHead(reply.status ?? 200, headers);
        res.end(payload);
      })().catch(() => req.socket.destroy());
    });
  };

  const sockets = new Set<import('node:net').Socket>();
  const track = (s: http.Server | https.Server) => {
    s.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    s.keepAliveTimeout = 1000;
  };
  const listen = (s: http.Server | https.Server) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port));
    });

  const tlsServer = https.createServer({ key, cert }, handler);
  track(tlsServer);
  const port = await listen(tlsServer);
  server.url = `https://127.0.0.1:${port}/token`;
  server.introspectUrl = `https://127.0.0.1:${port}/introspect`;
  let plain: http.Server | undefined;
  if (o.plainHttp) {
    plain = http.createServer(handler);
    track(plain);
    const p = await listen(plain);
    server.httpUrl = `http://127.0.0.1:${p}/token`;
    server.httpIntrospectUrl = `http://127.0.0.1:${p}/introspect`;
  }
  server.close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([tlsServer, plain].filter((s): s is http.Server => !!s).map((s) => new Promise<void>((r) => s.close(() => r()))));
  };
  return server;
}

/** One AUTH exchange seen by popBearerAuth(). */
export interface BearerAttempt {
  mechanism: 'XOAUTH2' | 'OAUTHBEARER';
  /** The decoded initial response. */
  decoded: string;
  user?: string;
  token?: string;
  host?: string;
  port?: string;
  ok: boolean;
  /** The client's (base64) answer to the error challenge, when the token was refused. */
  errorAnswer?: string;
}

/** Minimal view of hostile-pop3's PeerConn / MailboxState that the AUTH handler needs. */
interface PeerLike {
  write(data: string): void;
  readLine(timeoutMs?: number): Promise<string>;
}

/**
 * The POP3 server side of XOAUTH2 and OAUTHBEARER (RFC 5034 AUTH, RFC 7628), for serveMailbox's `handle` hook:
 * a token is accepted when this token server issued it and it was not revoked, and the user matches.
 * A refused token gets the JSON error challenge, then "-ERR [AUTH]" after the client's answer.
 */
export function popBearerAuth(ts: TokenServer, o: { user: string; attempts?: BearerAttempt[] }) {
  const attempts = o.attempts ?? [];
  return async (c: PeerLike, verb: string, args: string[], st: { loggedIn: boolean }): Promise<boolean> => {
    if (verb !== 'AUTH') return false;
    const mech = (args[0] ?? '').toUpperCase();
    if (mech !== 'XOAUTH2' && mech !== 'OAUTHBEARER') {
      c.write('-ERR [AUTH] mechanism not supported\r\n');
      return true;
    }
    let ir = args[1];
    if (ir === undefined) {
      c.write('+ \r\n');
      ir = await c.readLine();
    }
    const decoded = ir === '=' ? '' : Buffer.from(ir, 'base64').toString('utf8');
    const a: BearerAttempt = { mechanism: mech, decoded, ok: false };
    if (mech === 'XOAUTH2') {
      const m = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]+)\x01\x01$/.exec(decoded);
      if (m) [a.user, a.token] = [m[1]!, m[2]!];
    } else {
      const m = /^n,a=([^,]*),\x01((?:[a-z]+=[^\x01]*\x01)+)\x01$/.exec(decoded);
      if (m) {
        a.user = m[1]!.replace(/=2C/g, ',').replace(/=3D/g, '=');
        for (const kv of m[2]!.split('\x01').filter(Boolean)) {
          const i = kv.indexOf('=');
          const [k, v] = [kv.slice(0, i), kv.slice(i + 1)];
          if (k === 'auth' && v.startsWith('Bearer ')) a.token = v.slice(7);
          if (k === 'host') a.host = v;
          if (k === 'port') a.port = v;
        }
      }
    }
    a.ok = a.user === o.user && a.token !== undefined && ts.isValidAccessToken(a.token);
    attempts.push(a);
    if (a.ok) {
      st.loggedIn = true;
      c.write('+OK authenticated\r\n');
      return true;
    }
    const err = mech === 'XOAUTH2'
      ? { status: '401', schemes: 'Bearer', scope: 'https://mail.google.com/' }
      : { status: 'invalid_token', scope: 'pop', 'openid-configuration': 'https://127.0.0.1/.well-known/openid-configuration' };
    c.write(`+ ${Buffer.from(JSON.stringify(err)).toString('base64')}\r\n`);
    a.errorAnswer = await c.readLine();
    c.write('-ERR [AUTH] invalid credentials\r\n');
    return true;
  };
}
