// Typed OAuth token-endpoint errors: one code per failure class, a retry hint and the time of the next allowed attempt, never a secret in the text.
import { redact } from '../log.js';

export type OAuthErrorCode =
  | 'EOAUTH_GRANT' // invalid_grant: the refresh token was revoked, expired or belongs to another client
  | 'EOAUTH_CLIENT' // invalid_client / unauthorized_client / HTTP 401: client id or secret wrong
  | 'EOAUTH_REQUEST' // another OAuth error (invalid_scope, invalid_request, unsupported_grant_type, other 4xx)
  | 'EOAUTH_SERVER' // HTTP 5xx or 429: the endpoint is unwell or rate limiting
  | 'EOAUTH_RESPONSE' // a 2xx that is not JSON or has no access_token, or a redirect
  | 'EOAUTH_TIMEOUT' // no complete answer in time
  | 'EOAUTH_NETWORK' // DNS, TCP or TLS (certificate) failure
  | 'EOAUTH_CONFIG'; // the settings cannot work (e.g. a token URL over plain http to a remote host)

/** later: ordinary backoff; hard: a person has to fix something, attempts are rare (1 h). */
export type OAuthRetryHint = 'later' | 'hard';

export interface OAuthErrorOptions {
  retry: OAuthRetryHint;
  /** When the manager will next contact the endpoint (ms since epoch). */
  retryAt: number;
  status?: number;
  /** The `error` field of the endpoint's JSON reply, e.g. "invalid_grant". */
  oauthError?: string;
  /** The endpoint's Retry-After, in ms, when it sent one. */
  retryAfterMs?: number;
  /** True when this error was thrown without contacting the endpoint (inside the backoff window). */
  cached?: boolean;
  cause?: unknown;
}

export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly retry: OAuthRetryHint;
  readonly retryAt: number;
  readonly status?: number;
  readonly oauthError?: string;
  readonly retryAfterMs?: number;
  readonly cached: boolean;

  constructor(code: OAuthErrorCode, message: string, opts: OAuthErrorOptions) {
    super(redact(message), opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'OAuthError';
    this.code = code;
    this.retry = opts.retry;
    this.retryAt = opts.retryAt;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.oauthError !== undefined) this.oauthError = opts.oauthError;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    this.cached = opts.cached === true;
  }
}

/** Server-provided text, made safe to show: no control characters, bounded length, secrets masked. */
export function sanitizeServerText(s: unknown, max = 200): string | undefined {
  if (typeof s !== 'string') return undefined;
  const clean = redact(s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim());
  if (!clean) return undefined;
  return clean.length > max ? clean.slice(0, max) + '…' : clean;
}
