// Typed POP3 errors: one code per failure class, a retry hint for the scheduler, and server text with secrets redacted.
import { redact } from '../log.js';

export type Pop3ErrorCode =
  | 'ECONNECT' // DNS or TCP connect failed
  | 'ETIMEOUT' // connect, greeting, command or session deadline passed
  | 'ESLOW' // a reply arrived slower than the minimum reply rate
  | 'ETLS' // TLS handshake failed for a reason other than the certificate
  | 'ECERT' // certificate chain, validity or name verification failed
  | 'EFINGERPRINT' // certificate verified but does not match the pinned SHA-256 fingerprint
  | 'EPROTOCOL' // the server said something that is not POP3 (or not at this time)
  | 'ECLOSED' // the connection closed while something was outstanding
  | 'ELIMIT' // a line or reply exceeded its size cap
  | 'EAUTH' // authentication rejected ([AUTH] or no response code)
  | 'EIN_USE' // [IN-USE]: maildrop locked by another session
  | 'ELOGIN_DELAY' // [LOGIN-DELAY]: logging in too often
  | 'ESYS_TEMP' // [SYS/TEMP]: transient server-side failure
  | 'ESYS_PERM' // [SYS/PERM]: permanent server-side failure
  | 'EINSECURE' // would expose the password (cleartext or weak mechanism) without opt-in
  | 'ESTLS_UNAVAILABLE' // starttls requested but the server does not offer STLS
  | 'ESTLS_INJECTION' // bytes arrived after "+OK" to STLS and before the handshake
  | 'ENO_MECHANISM' // no usable authentication mechanism
  | 'ESCRAM_SERVER_SIGNATURE' // SCRAM server signature missing or wrong: the server did not prove it knows the password
  | 'ESTATE' // command not allowed in the current session state
  | 'EINVALID' // caller passed an argument that cannot be sent (CR/LF, bad message number)
  | 'ERR' // a plain "-ERR" to a command
  | 'EABORTED'; // the caller aborted (signal or destroy())

export type RetryHint = 'later' | 'backoff-hard' | 'never' | 'next-poll';

const DEFAULT_RETRY: Record<Pop3ErrorCode, RetryHint> = {
  ECONNECT: 'next-poll',
  ETIMEOUT: 'next-poll',
  ESLOW: 'next-poll',
  ETLS: 'backoff-hard',
  ECERT: 'never',
  EFINGERPRINT: 'never',
  EPROTOCOL: 'next-poll',
  ECLOSED: 'next-poll',
  ELIMIT: 'backoff-hard',
  EAUTH: 'backoff-hard',
  EIN_USE: 'later',
  ELOGIN_DELAY: 'later',
  ESYS_TEMP: 'later',
  ESYS_PERM: 'never',
  EINSECURE: 'never',
  ESTLS_UNAVAILABLE: 'never',
  ESTLS_INJECTION: 'backoff-hard',
  ENO_MECHANISM: 'never',
  ESCRAM_SERVER_SIGNATURE: 'never',
  ESTATE: 'never',
  EINVALID: 'never',
  ERR: 'next-poll',
  EABORTED: 'next-poll',
};

export interface Pop3ErrorOptions {
  retry?: RetryHint;
  respCode?: string;
  serverText?: string;
  cause?: unknown;
  retryAfterSec?: number;
}

export class Pop3Error extends Error {
  readonly code: Pop3ErrorCode;
  readonly retry: RetryHint;
  /** RFC 2449 response code without brackets, e.g. "IN-USE" or "SYS/TEMP". */
  readonly respCode?: string;
  /** The server's reply text, secrets redacted. */
  readonly serverText?: string;
  /** How long the server asked the client to wait before the next attempt (e.g. its CAPA LOGIN-DELAY), seconds. */
  retryAfterSec?: number;

  constructor(code: Pop3ErrorCode, message: string, opts: Pop3ErrorOptions = {}) {
    super(redact(message), opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'Pop3Error';
    this.code = code;
    this.retry = opts.retry ?? DEFAULT_RETRY[code];
    if (opts.respCode !== undefined) this.respCode = opts.respCode;
    if (opts.serverText !== undefined) this.serverText = redact(opts.serverText);
    if (opts.retryAfterSec !== undefined) this.retryAfterSec = opts.retryAfterSec;
  }
}

/** The code of any error for logs and reports: a Pop3Error's, another error's string `code` (OAuth's EOAUTH_*), else ERROR. */
export function errorCodeOf(err: unknown): string {
  if (err instanceof Pop3Error) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}

const RESP_CODE_MAP: Record<string, Pop3ErrorCode> = {
  'IN-USE': 'EIN_USE',
  'LOGIN-DELAY': 'ELOGIN_DELAY',
  'SYS/TEMP': 'ESYS_TEMP',
  'SYS/PERM': 'ESYS_PERM',
  AUTH: 'EAUTH',
};

/** Extract an RFC 2449 response code ("[SYS/TEMP] text" -> "SYS/TEMP") from reply text. */
export function parseRespCode(text: string): string | undefined {
  const m = /^\[([^\]\s]+)\]/.exec(text);
  return m ? m[1]!.toUpperCase() : undefined;
}

/**
 * Turn a "-ERR" reply into a typed error. RFC 2449 / RFC 3206 response codes win; when there is none,
 * `fallback` decides (EAUTH for login commands, ERR otherwise). Hierarchical codes map by their first
 * known prefix ("SYS/TEMP/FOO" -> ESYS_TEMP).
 */
export function errorFromReply(command: string, text: string, fallback: Pop3ErrorCode = 'ERR'): Pop3Error {
  const respCode = parseRespCode(text);
  let code: Pop3ErrorCode = fallback;
  if (respCode) {
    const parts = respCode.split('/');
    for (let i = parts.length; i > 0; i--) {
      const mapped = RESP_CODE_MAP[parts.slice(0, i).join('/')];
      if (mapped) {
        code = mapped;
        break;
      }
    }
  }
  const opts: Pop3ErrorOptions = { serverText: text };
  if (respCode) opts.respCode = respCode;
  return new Pop3Error(code, `${command} failed: -ERR ${text}`.trimEnd(), opts);
}
