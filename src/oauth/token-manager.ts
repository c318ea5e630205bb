// OAuth2 access tokens for one mailbox: refresh_token grant, cached until shortly before expiry, single-flight, rotated refresh tokens saved, and a backoff so failures never become a retry storm.
import { registerSecret, silentLogger, type Logger } from '../log.js';
import { VERSION } from '../version.js';
import { exponentialDelay } from '../backoff.js';
import { OAuthError, sanitizeServerText, type OAuthErrorCode, type OAuthRetryHint } from './errors.js';
import { postForm, TransportError, type FetchLike, type FormPostResponse } from './form-post.js';
import { RefreshTokenStore } from './refresh-token-store.js';

export interface OAuthBackoffPolicy {
  /** Wait after the first ordinary failure; doubles with each consecutive one. Default 60 s. */
  minMs: number;
  /** Longest wait after ordinary failures. Default 1 h. */
  maxMs: number;
  /** Wait after a failure a person must fix (invalid_grant, invalid_client, bad request or settings). Default 1 h. */
  hardMs: number;
}

export interface OAuthTokenManagerOptions {
  mailboxId: string;
  tokenUrl: string;
  clientId: string;
  clientSecret?: string | undefined;
  refreshToken: string;
  scope?: string | undefined;
  /** Where `<mailbox>.oauth.json` (a rotated refresh token) is kept. */
  stateDir: string;
  logger?: Logger;
  /** Use this instead of node:https (e.g. globalThis.fetch). */
  fetchImpl?: FetchLike;
  /** Trust anchors for the token endpoint instead of the system store (node:https only). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Whole-request deadline. Default 30 s. */
  timeoutMs?: number;
  backoff?: Partial<OAuthBackoffPolicy>;
  /** Clock, for tests. */
  now?: () => number;
}

interface CachedToken {
  token: string;
  /** When the endpoint says the token stops working. */
  expiresAt: number;
  /** When a new one is fetched: the earlier of 60 s or 10 % of the lifetime before expiry (at most half the lifetime). */
  refreshAt: number;
}

interface FailureWindow {
  code: OAuthErrorCode;
  retry: OAuthRetryHint;
  message: string;
  status?: number;
  oauthError?: string;
  until: number;
}

const DEFAULT_BACKOFF: OAuthBackoffPolicy = { minMs: 60_000, maxMs: 3_600_000, hardMs: 3_600_000 };
const DEFAULT_EXPIRES_IN_S = 3600;
const MAX_RESPONSE_BYTES = 64 * 1024;
/** A token closer than this to its expiry is not handed out even when refreshing fails. */
const EXPIRY_SKEW_MS = 5_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

/** Fetches and caches access tokens with the OAuth2 refresh_token grant (RFC 6749 section 6). */
export class OAuthTokenManager {
  readonly mailboxId: string;
  private readonly opts: OAuthTokenManagerOptions;
  private readonly log: Logger;
  private readonly store: RefreshTokenStore;
  private readonly backoff: OAuthBackoffPolicy;
  private readonly now: () => number;
  private cached: CachedToken | undefined;
  private refreshToken: string | undefined;
  private loading: Promise<void> | undefined;
  private inflight: Promise<string> | undefined;
  private failure: FailureWindow | undefined;
  private consecutiveFailures = 0;
  private requests = 0;

  constructor(opts: OAuthTokenManagerOptions) {
    this.opts = opts;
    this.mailboxId = opts.mailboxId;
    this.log = (opts.logger ?? silentLogger).child('oauth');
    this.store = new RefreshTokenStore(opts.stateDir, opts.mailboxId, this.log);
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.now = opts.now ?? Date.now;
    registerSecret(opts.refreshToken);
    registerSecret(opts.clientSecret);
  }

  /** Token endpoint requests made so far (for diagnostics and tests). */
  get requestCount(): number {
    return this.requests;
  }

  /** Path of the file that holds a rotated refresh token. */
  get tokenFile(): string {
    return this.store.file;
  }

  /** Load a rotated refresh token saved by an earlier run (done by the first getAccessToken() otherwise). */
  init(): Promise<void> {
    this.loading ??= (async () => {
      const saved = await this.store.load(this.opts.refreshToken);
      if (saved !== undefined && saved !== this.opts.refreshToken) this.log.debug('using the rotated refresh token saved earlier', { file: this.store.file });
      this.refreshToken = saved ?? this.opts.refreshToken;
    })();
    return this.loading;
  }

  /**
   * A valid access token: the cached one, or a fresh one from the endpoint. Concurrent callers share one
   * request. Inside the backoff window after a failure this throws at once (error.cached) without HTTP,
   * unless the previous token is still valid, which is then returned.
   */
  getAccessToken(): Promise<string> {
    const now = this.now();
    const c = this.cached;
    if (c && now < c.refreshAt) return Promise.resolve(c.token);
    if (this.inflight) return this.inflight;
    if (this.failure && now < this.failure.until) {
      if (c && now < c.expiresAt - EXPIRY_SKEW_MS) return Promise.resolve(c.token);
      return Promise.reject(this.failFast(this.failure, now));
    }
    const p = this.refresh().finally(() => {
      if (this.inflight === p) this.inflight = undefined;
    });
    this.inflight = p;
    return p;
  }

  /** Forget the cached access token (the server rejected it); the next getAccessToken() fetches a new one. */
  invalidate(): void {
    if (this.cached) this.log.debug('access token invalidated');
    this.cached = undefined;
  }

  private async refresh(): Promise<string> {
    await this.init();
    const started = this.now();
    let url: URL;
    try {
      url = this.endpoint();
    } catch (e) {
      throw this.failed(e as OAuthError, started);
    }
    const form: Record<string, string> = { grant_type: 'refresh_token', refresh_token: this.refreshToken!, client_id: this.opts.clientId };
    if (this.opts.clientSecret) form.client_secret = this.opts.clientSecret;
    if (this.opts.scope) form.scope = this.opts.scope;
    this.log.debug('refreshing access token', { endpoint: describeUrl(url) });
    this.requests++;
    let res: FormPostResponse;
    try {
      res = await postForm({
        url, form, timeoutMs: this.opts.timeoutMs ?? 30_000, maxBytes: MAX_RESPONSE_BYTES, ca: this.opts.ca,
        headers: { accept: 'application/json', 'user-agent': `pop2mqtt/${VERSION}` },
      }, this.opts.fetchImpl);
    } catch (e) {
      return this.fallbackOrThrow(this.transportError(e, url), started);
    }
    const outcome = this.interpret(res, url);
    if (outcome instanceof OAuthError) return this.fallbackOrThrow(outcome, started);
    registerSecret(outcome.accessToken);
    const lifetimeMs = outcome.expiresInS * 1000;
    const margin = Math.min(Math.max(60_000, lifetimeMs * 0.1), lifetimeMs / 2);
    this.cached = { token: outcome.accessToken, expiresAt: started + lifetimeMs, refreshAt: started + lifetimeMs - margin };
    this.failure = undefined;
    this.consecutiveFailures = 0;
    let rotated = false;
    if (outcome.refreshToken && outcome.refreshToken !== this.refreshToken) {
      registerSecret(outcome.refreshToken);
      this.refreshToken = outcome.refreshToken;
      rotated = true;
      try {
        await this.store.save(outcome.refreshToken, this.opts.refreshToken);
      } catch (e) {
        this.log.error('could not save the rotated refresh token: after a restart the token from the config is used and may be refused', {
          file: this.store.file, error: (e as NodeJS.ErrnoException).code ?? 'error',
        });
      }
    }
    this.log.info('access token refreshed', { expires_in_s: outcome.expiresInS, refresh_token_rotated: rotated || undefined });
    return outcome.accessToken;
  }

  private endpoint(): URL {
    let url: URL;
    try {
      url = new URL(this.opts.tokenUrl);
    } catch {
      throw this.error('EOAUTH_CONFIG', 'hard', 'token_url is not a valid URL', {});
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
      throw this.error('EOAUTH_CONFIG', 'hard', `token_url ${describeUrl(url)} must use https (plain http is allowed only to 127.0.0.1/localhost): the client secret and refresh token would cross the network in clear`, {});
    }
    return url;
  }

  private interpret(res: FormPostResponse, url: URL): { accessToken: string; expiresInS: number; refreshToken?: string } | OAuthError {
    const where = describeUrl(url);
    let json: Record<string, unknown> | undefined;
    try {
      const v: unknown = JSON.parse(res.body);
      if (v && typeof v === 'object' && !Array.isArray(v)) json = v as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    const status = res.status;
    if (status >= 200 && status < 300) {
      if (!json) return this.error('EOAUTH_RESPONSE', 'later', `${where} answered HTTP ${status} with ${describeBody(res)}, not a JSON token response`, { status });
      const at = json.access_token;
      if (typeof at !== 'string' || at === '') return this.error('EOAUTH_RESPONSE', 'later', `${where} answered HTTP ${status} without an access_token`, { status });
      registerSecret(at);
      const type = json.token_type;
      if (typeof type === 'string' && type.toLowerCase() !== 'bearer') {
        return this.error('EOAUTH_RESPONSE', 'later', `${where} issued a token of type ${sanitizeServerText(type, 40)}, not Bearer`, { status });
      }
      const out: { accessToken: string; expiresInS: number; refreshToken?: string } = { accessToken: at, expiresInS: parseExpiresIn(json.expires_in) };
      if (typeof json.refresh_token === 'string' && json.refresh_token !== '') out.refreshToken = json.refresh_token;
      return out;
    }
    if (status >= 300 && status < 400) {
      return this.error('EOAUTH_RESPONSE', 'later', `${where} answered with a redirect (HTTP ${status}); redirects are not followed: check token_url`, { status });
    }
    const oauthError = json && typeof json.error === 'string' ? sanitizeServerText(json.error, 60) : undefined;
    const desc = json ? sanitizeServerText(json.error_description) : undefined;
    const said = oauthError ? `${oauthError}${desc ? ` (${desc})` : ''}` : `HTTP ${status}${json ? '' : ` with ${describeBody(res)}`}`;
    const extra = { status, oauthError };
    if (oauthError === 'invalid_grant') {
      return this.error('EOAUTH_GRANT', 'hard', `${where} refused the refresh token: ${said}. The token was revoked, expired, or issued to another client: authorise again (docs/oauth.md) and put the new refresh token in the config`, extra);
    }
    if (oauthError === 'invalid_client' || oauthError === 'unauthorized_client' || (!oauthError && status === 401)) {
      return this.error('EOAUTH_CLIENT', 'hard', `${where} refused the client: ${said}. Check oauth.client_id and oauth.client_secret`, extra);
    }
    if (status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.now());
      return this.error('EOAUTH_SERVER', 'later', `${where} is unavailable or rate limiting: ${said}`, { ...extra, retryAfterMs });
    }
    return this.error('EOAUTH_REQUEST', 'hard', `${where} refused the request: ${said}. Check oauth.scope, oauth.client_id and token_url`, extra);
  }

  private transportError(e: unknown, url: URL): OAuthError {
    const where = describeUrl(url);
    if (e instanceof TransportError) {
      if (e.kind === 'timeout') return this.error('EOAUTH_TIMEOUT', 'later', `${where}: ${e.message}`, {});
      if (e.kind === 'too-large') return this.error('EOAUTH_RESPONSE', 'later', `${where}: ${e.message}`, {});
      return this.error('EOAUTH_NETWORK', 'later', `${where}: ${e.message}: ${e.detail ?? 'unknown error'}`, {});
    }
    return this.error('EOAUTH_NETWORK', 'later', `${where}: ${(e as Error)?.message ?? String(e)}`, {});
  }

  /** An error to be recorded by failed(); the backoff is applied there. */
  private error(code: OAuthErrorCode, retry: OAuthRetryHint, what: string, o: { status?: number; oauthError?: string; retryAfterMs?: number | undefined }): OAuthError {
    return new OAuthError(code, `OAuth token refresh for mailbox "${this.mailboxId}" failed: ${what}`, { retry, retryAt: 0, ...defined(o) });
  }

  /** Open the backoff window for this failure and return the error the caller sees (with its next attempt). */
  private failed(err: OAuthError, at: number): OAuthError {
    this.consecutiveFailures++;
    let wait = err.retry === 'hard'
      ? this.backoff.hardMs
      : exponentialDelay(this.consecutiveFailures - 1, this.backoff.minMs, this.backoff.maxMs);
    if (err.retryAfterMs !== undefined) wait = Math.min(this.backoff.maxMs, Math.max(wait, err.retryAfterMs));
    const until = at + wait;
    this.failure = { code: err.code, retry: err.retry, message: err.message, until, ...defined({ status: err.status, oauthError: err.oauthError }) };
    this.log.warn('access token refresh failed', { code: err.code, error: err.message, retry_in_s: Math.round(wait / 1000) });
    return new OAuthError(err.code, `${err.message}; next attempt in ${formatWait(wait)}`, {
      retry: err.retry, retryAt: until, ...defined({ status: err.status, oauthError: err.oauthError, retryAfterMs: err.retryAfterMs }),
    });
  }

  /** Record the failure; hand out the previous token while it is still valid, else throw. */
  private fallbackOrThrow(err: OAuthError, started: number): string {
    const out = this.failed(err, started);
    const c = this.cached;
    if (c && this.now() < c.expiresAt - EXPIRY_SKEW_MS) {
      this.log.warn('using the current access token until it expires', { expires_in_s: Math.round((c.expiresAt - this.now()) / 1000) });
      return c.token;
    }
    throw out;
  }

  private failFast(f: FailureWindow, now: number): OAuthError {
    return new OAuthError(f.code, `${f.message}; not retried yet: next attempt in ${formatWait(f.until - now)}`, {
      retry: f.retry, retryAt: f.until, cached: true, ...defined({ status: f.status, oauthError: f.oauthError }),
    });
  }
}

/** The object without its undefined properties (exactOptionalPropertyTypes-friendly spreading). */
function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** Origin and path only: never user info or a query string, which could carry credentials. */
function describeUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

function describeBody(res: FormPostResponse): string {
  const type = res.headers['content-type']?.split(';')[0]?.trim();
  if (res.body.length === 0) return 'an empty body';
  return `a ${type ? sanitizeServerText(type, 60) + ' ' : ''}body of ${Buffer.byteLength(res.body)} bytes`;
}

function parseExpiresIn(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isFinite(n) || n <= 0) return DEFAULT_EXPIRES_IN_S;
  return Math.min(Math.floor(n), 365 * 86_400);
}

/** Retry-After as delay-seconds or an HTTP date; undefined when absent or unparseable. */
function parseRetryAfter(v: string | undefined, now: number): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

function formatWait(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.ceil(s / 60);
  return m < 120 ? `${m} min` : `${Math.ceil(m / 60)} h`;
}
