// Opens the byte stream under a POP3 session: TCP, implicit TLS, or an in-place STLS upgrade, with verification always on.
//
// Certificate policy: the chain and the host name are ALWAYS verified (rejectUnauthorized cannot be turned
// off). `ca` adds trust anchors to Node's bundled roots instead of replacing them. A `fingerprint` pin is
// checked IN ADDITION to chain verification (a pin alone does not make a self-signed certificate
// acceptable: add it with `ca`).
// Resumption: a resumed handshake carries no certificate (Node reports none and skips its identity
// check). So every session ticket this process receives is remembered with the certificate of the full
// handshake it came from; a resumed connection reports that certificate, and with a pin a session is only
// offered when its remembered certificate matches the pin (otherwise a full handshake is done).
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Pop3Error, type Pop3ErrorCode } from './errors.js';

export interface TlsParams {
  host: string;
  servername?: string | undefined;
  ca?: string | Buffer | undefined;
  fingerprint?: string | undefined;
  minTlsVersion?: 'TLSv1.2' | 'TLSv1.3' | undefined;
  session?: Buffer | undefined;
}

export interface PeerCertificateInfo {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

export interface TlsInfo {
  protocol: string;
  cipher: string;
  authorized: boolean;
  peerCertificate: PeerCertificateInfo;
  resumed: boolean;
}

export type Pop3Socket = net.Socket | tls.TLSSocket;

/** Sessions seen by this process -> certificate of the full handshake they came from (bounded, oldest dropped). */
const SESSION_MEMORY = 256;
const sessionPeers = new Map<string, PeerCertificateInfo>();

function sessionKey(session: Buffer): string {
  return createHash('sha256').update(session).digest('hex');
}

function rememberSession(session: Buffer, peer: PeerCertificateInfo): void {
  const key = sessionKey(session);
  sessionPeers.delete(key);
  sessionPeers.set(key, peer);
  while (sessionPeers.size > SESSION_MEMORY) sessionPeers.delete(sessionPeers.keys().next().value!);
}

/** The certificate a remembered session was established with. */
export function sessionPeer(session: Buffer | undefined): PeerCertificateInfo | undefined {
  return session ? sessionPeers.get(sessionKey(session)) : undefined;
}

const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME/;

/** Normalise a SHA-256 fingerprint: hex digits only, lower case. */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/[:\s]/g, '').toLowerCase();
}

function certName(obj: unknown): string {
  if (!obj || typeof obj !== 'object') return '';
  return Object.entries(obj as Record<string, unknown>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

/** The name the certificate must carry: servername option, else host. */
export function verifyName(p: TlsParams): string {
  return p.servername ?? p.host;
}

/**
 * One secure context per (minimum version, extra CA), reused by every connection: building one parses the whole
 * root store (about 0.6 MiB of native memory that V8 does not see), so a context per poll grows a daemon's RSS.
 */
const CONTEXT_MEMORY = 16;
const secureContexts = new Map<string, tls.SecureContext>();

export function secureContextFor(p: TlsParams): tls.SecureContext {
  const minVersion = p.minTlsVersion ?? 'TLSv1.2';
  const ca = p.ca === undefined ? undefined : typeof p.ca === 'string' ? p.ca : p.ca.toString('utf8');
  const key = createHash('sha256').update(`${minVersion}\0${ca ?? ''}`).digest('hex');
  let ctx = secureContexts.get(key);
  if (!ctx) {
    ctx = tls.createSecureContext({ minVersion, ca: ca === undefined ? undefined : [...tls.rootCertificates, ca] });
    secureContexts.set(key, ctx);
    while (secureContexts.size > CONTEXT_MEMORY) secureContexts.delete(secureContexts.keys().next().value!);
  }
  return ctx;
}

export function tlsConnectOptions(p: TlsParams): tls.ConnectionOptions {
  const name = verifyName(p);
  const opts: tls.ConnectionOptions = {
    rejectUnauthorized: true,
    minVersion: p.minTlsVersion ?? 'TLSv1.2',
    secureContext: secureContextFor(p),
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
  };
  // RFC 6066 forbids IP literals in SNI; the identity check above still uses the name.
  if (!net.isIP(name)) opts.servername = name;
  if (p.session && sessionUsable(p)) opts.session = p.session;
  return opts;
}

/** Without a pin any session may be offered; with one only a session known to come from the pinned certificate. */
function sessionUsable(p: TlsParams): boolean {
  if (!p.fingerprint) return true;
  const peer = sessionPeer(p.session);
  return peer !== undefined && normalizeFingerprint(peer.fingerprint256) === normalizeFingerprint(p.fingerprint);
}

/** The server certificate of this connection: from the handshake, or for a resumed one, from memory. */
export function peerInfo(sock: tls.TLSSocket, p: TlsParams): PeerCertificateInfo | null {
  if (sock.isSessionReused()) return sessionPeer(p.session) ?? null;
  const cert = sock.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return null;
  return {
    subject: certName(cert.subject),
    issuer: certName(cert.issuer),
    validFrom: cert.valid_from ?? '',
    validTo: cert.valid_to ?? '',
    fingerprint256: cert.fingerprint256,
  };
}

/** Map a socket/TLS error to a typed error; `phase` says how far the connection got. */
export function mapSocketError(err: unknown, phase: 'tcp' | 'tls'): Pop3Error {
  if (err instanceof Pop3Error) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = e?.message ?? String(err);
  let out: Pop3ErrorCode;
  if (CERT_ERROR.test(code) || /certificate/i.test(msg)) out = 'ECERT';
  else if (phase === 'tcp') out = 'ECONNECT';
  else out = 'ETLS';
  // A reset or drop during the handshake is transient; a negotiation failure (version, cipher) is not.
  const transient = out === 'ETLS' && TRANSIENT_NET.has(code);
  return new Pop3Error(out, `${out === 'ECONNECT' ? 'connect' : 'TLS'} failed: ${msg}${code ? ` (${code})` : ''}`, {
    cause: err,
    ...(transient ? { retry: 'next-poll' as const } : {}),
  });
}

const TRANSIENT_NET = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);

/** Called once the handshake finished: pin check (also on resumed sessions) and a last authorisation check. */
export function checkEstablished(sock: tls.TLSSocket, p: TlsParams): Pop3Error | null {
  if (!sock.authorized) {
    return new Pop3Error('ECERT', `certificate not trusted: ${String(sock.authorizationError ?? 'unknown')}`);
  }
  if (p.fingerprint) {
    const fp = peerInfo(sock, p)?.fingerprint256;
    if (!fp || normalizeFingerprint(fp) !== normalizeFingerprint(p.fingerprint)) {
      return new Pop3Error('EFINGERPRINT', `certificate fingerprint ${fp ?? '(unknown)'} does not match the pinned one`);
    }
  }
  return null;
}

export function describeTls(sock: tls.TLSSocket, p: TlsParams): TlsInfo {
  const peer = peerInfo(sock, p);
  return {
    protocol: sock.getProtocol() ?? '',
    cipher: sock.getCipher()?.name ?? '',
    authorized: sock.authorized,
    peerCertificate: peer ?? { subject: '', issuer: '', validFrom: '', validTo: '', fingerprint256: '' },
    resumed: sock.isSessionReused(),
  };
}

/** Remember each new session with this connection's certificate, then pass it on. */
function trackSessions(sock: tls.TLSSocket, p: TlsParams, onSession: ((s: Buffer) => void) | undefined): void {
  sock.on('session', (session: Buffer) => {
    const peer = peerInfo(sock, p);
    if (peer) rememberSession(session, peer);
    onSession?.(session);
  });
}

export interface ConnectParams {
  host: string;
  port: number;
  implicitTls: boolean;
  tls: TlsParams;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Latest TLS session ticket, for resumption. */
  onSession?: (session: Buffer) => void;
}

function abortError(): Pop3Error {
  return new Pop3Error('EABORTED', 'aborted by caller');
}

/**
 * Wait until `sock` reaches `readyEvent`, under one deadline and the abort signal.
 * On failure the socket is destroyed and the promise rejects with a typed error.
 */
function whenReady<T extends Pop3Socket>(
  sock: T,
  readyEvent: 'connect' | 'secureConnect',
  timeoutMs: number,
  signal: AbortSignal | undefined,
  phaseOf: () => 'tcp' | 'tls',
  verify: (() => Pop3Error | null) | null,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (err: Pop3Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.removeListener(readyEvent, onReady);
      sock.removeListener('error', onError);
      sock.removeListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        // Keep a listener so a late error on the destroyed socket is never unhandled.
        sock.on('error', () => {});
        sock.destroy();
        reject(err);
      } else resolve(sock);
    };
    const onReady = () => finish(verify ? verify() : null);
    const onError = (err: unknown) => finish(mapSocketError(err, phaseOf()));
    const onClose = () =>
      finish(new Pop3Error(phaseOf() === 'tcp' ? 'ECONNECT' : 'ETLS', `connection closed during ${what}`, { retry: 'next-poll' }));
    const onAbort = () => finish(abortError());
    const timer = setTimeout(() => finish(new Pop3Error('ETIMEOUT', `${what} did not complete within ${timeoutMs} ms`)), timeoutMs);
    sock.once(readyEvent, onReady);
    sock.on('error', onError);
    sock.once('close', onClose);
    if (signal) {
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

/** DNS + TCP (+ TLS for implicit TLS) under one deadline. */
export function openTransport(p: ConnectParams): Promise<Pop3Socket> {
  if (p.signal?.aborted) return Promise.reject(abortError());
  if (!p.implicitTls) {
    // noDelay: a pipelined batch must not wait for Nagle's algorithm (an extra round trip per batch on a slow link).
    const sock = net.connect({ host: p.host, port: p.port, noDelay: true });
    return whenReady(sock, 'connect', p.timeoutMs, p.signal, () => 'tcp', null, 'connect');
  }
  const sock = tls.connect({ ...tlsConnectOptions(p.tls), host: p.host, port: p.port });
  sock.setNoDelay(true);
  let tcpUp = false;
  sock.once('connect', () => {
    tcpUp = true;
  });
  trackSessions(sock, p.tls, p.onSession);
  return whenReady(sock, 'secureConnect', p.timeoutMs, p.signal, () => (tcpUp ? 'tls' : 'tcp'), () => checkEstablished(sock, p.tls), 'connect and TLS handshake');
}

/** Upgrade a connected plain socket in place (after "+OK" to STLS). */
export function upgradeTransport(
  plain: net.Socket,
  p: { tls: TlsParams; timeoutMs: number; signal?: AbortSignal | undefined; onSession?: (session: Buffer) => void },
): Promise<tls.TLSSocket> {
  if (p.signal?.aborted) {
    plain.destroy();
    return Promise.reject(abortError());
  }
  const sock = tls.connect({ ...tlsConnectOptions(p.tls), socket: plain });
  trackSessions(sock, p.tls, p.onSession);
  // Errors of the underlying socket surface on the TLS socket; keep the plain one quiet.
  plain.on('error', () => {});
  return whenReady(sock, 'secureConnect', p.timeoutMs, p.signal, () => 'tls', () => checkEstablished(sock, p.tls), 'STLS handshake');
}
