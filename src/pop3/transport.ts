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
// Economy on resumption: a TLS 1.3 session is resumed with a lean ClientHello (TLS 1.3 only, so none of the
// two dozen TLS 1.2 cipher suites), and what the session learned about the server (its CAPA) is kept with the chain
// of tickets, so a resumed connection can skip asking again. A lean hello the server refuses is retried at once
// with the full one.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Pop3Error, type Pop3ErrorCode } from './errors.js';

export interface TlsParams {
  host: string;
  /** The server's port: with the name, it says which server refused a lean hello. */
  port?: number | undefined;
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

/**
 * What this process learned about the server behind one full handshake, shared by every session resumed from it:
 * a ticket proves the same server (it holds the ticket key), so this stays true across resumptions.
 */
export interface ServerMemory {
  /** CAPA lines read before login, when a session of this chain read them. */
  capabilities: string[] | null;
}

interface RememberedSession {
  peer: PeerCertificateInfo;
  protocol: string;
  memory: ServerMemory;
}

/** Sessions seen by this process -> what they came from (bounded, oldest dropped). */
const SESSION_MEMORY = 256;
const sessions = new Map<string, RememberedSession>();

function sessionKey(session: Buffer): string {
  return createHash('sha256').update(session).digest('hex');
}

function rememberSession(session: Buffer, entry: RememberedSession): void {
  const key = sessionKey(session);
  sessions.delete(key);
  sessions.set(key, entry);
  while (sessions.size > SESSION_MEMORY) sessions.delete(sessions.keys().next().value!);
}

function remembered(session: Buffer | undefined): RememberedSession | undefined {
  return session ? sessions.get(sessionKey(session)) : undefined;
}

function forgetSession(session: Buffer | undefined): void {
  if (session) sessions.delete(sessionKey(session));
}

/** CAPA lines remembered for the server a session came from, or null. */
export function rememberedCapabilities(session: Buffer | undefined): string[] | null {
  return remembered(session)?.memory.capabilities ?? null;
}

/** The certificate a remembered session was established with. */
export function sessionPeer(session: Buffer | undefined): PeerCertificateInfo | undefined {
  return remembered(session)?.peer;
}

const socketMemory = new WeakMap<tls.TLSSocket, ServerMemory>();

/**
 * The server memory of a finished handshake: inherited when the session was resumed, fresh otherwise. Null for a
 * socket without TLS.
 */
export function serverMemoryOf(sock: Pop3Socket, p: TlsParams): ServerMemory | null {
  if (!(sock instanceof tls.TLSSocket)) return null;
  let m = socketMemory.get(sock);
  if (!m) {
    m = (sock.isSessionReused() ? remembered(p.session)?.memory : undefined) ?? { capabilities: null };
    socketMemory.set(sock, m);
  }
  return m;
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
 * TLS 1.3 suites, AES-128-GCM first: the mandatory suite, as strong as needed, and its SHA-256 transcript makes the
 * binder and both Finished messages 16 bytes shorter than AES-256-GCM-SHA384's on every handshake.
 */
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384';
/**
 * The lean hello's key-exchange groups and signature algorithms: the common ones only (a few dozen bytes less than
 * OpenSSL's full lists). A server that needs another is refused the lean hello once and gets the full one from then on.
 */
const LEAN_GROUPS = 'X25519:P-256:P-384';
const LEAN_SIGALGS = [
  'ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ed25519', 'rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512', 'rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pkcs1_sha512',
].join(':');
/** Full hello: the TLS 1.3 suites above, then Node's default TLS 1.2 list (for servers without TLS 1.3). */
const FULL_CIPHERS = [TLS13_SUITES, ...tls.DEFAULT_CIPHERS.split(':').filter((c) => c.length > 0 && !c.startsWith('TLS_'))].join(':');

/**
 * One secure context per (hello, minimum version, extra CA), reused by every connection: building one parses the whole
 * root store (about 0.6 MiB of native memory that V8 does not see), so a context per poll grows a daemon's RSS.
 * The lean hello (TLS 1.3 only) is used to resume a TLS 1.3 session: its ClientHello is about 120 bytes shorter.
 */
const CONTEXT_MEMORY = 16;
const secureContexts = new Map<string, tls.SecureContext>();

export function secureContextFor(p: TlsParams, hello: 'full' | 'lean' = 'full'): tls.SecureContext {
  const minVersion = hello === 'lean' ? 'TLSv1.3' : (p.minTlsVersion ?? 'TLSv1.2');
  const ca = p.ca === undefined ? undefined : typeof p.ca === 'string' ? p.ca : p.ca.toString('utf8');
  const key = createHash('sha256').update(`${hello}\0${minVersion}\0${ca ?? ''}`).digest('hex');
  let ctx = secureContexts.get(key);
  if (!ctx) {
    ctx = tls.createSecureContext({
      minVersion,
      ca: ca === undefined ? undefined : [...tls.rootCertificates, ca],
      ...(hello === 'lean' ? { ciphers: TLS13_SUITES, ecdhCurve: LEAN_GROUPS, sigalgs: LEAN_SIGALGS } : { ciphers: FULL_CIPHERS }),
    });
    secureContexts.set(key, ctx);
    while (secureContexts.size > CONTEXT_MEMORY) secureContexts.delete(secureContexts.keys().next().value!);
  }
  return ctx;
}

/** Servers (name verified, host, port) that refused a lean hello in this process: they get the full hello from then on. */
const leanRefused = new Set<string>();

function serverKey(p: TlsParams): string {
  return `${verifyName(p)}\0${p.host}\0${p.port ?? ''}`;
}

function refuseLean(p: TlsParams): void {
  forgetSession(p.session);
  leanRefused.add(serverKey(p));
}

/** The hello a connection with these parameters sends: lean only to resume a session known to be TLS 1.3. */
export function helloFor(p: TlsParams): 'full' | 'lean' {
  if (leanRefused.has(serverKey(p))) return 'full';
  return p.session && sessionUsable(p) && remembered(p.session)?.protocol === 'TLSv1.3' ? 'lean' : 'full';
}

export function tlsConnectOptions(p: TlsParams, hello: 'full' | 'lean' = helloFor(p)): tls.ConnectionOptions {
  const name = verifyName(p);
  const opts: tls.ConnectionOptions = {
    rejectUnauthorized: true,
    minVersion: hello === 'lean' ? 'TLSv1.3' : (p.minTlsVersion ?? 'TLSv1.2'),
    secureContext: secureContextFor(p, hello),
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

/** Remember each new session with this connection's certificate, protocol and server memory, then pass it on. */
function trackSessions(sock: tls.TLSSocket, p: TlsParams, onSession: ((s: Buffer) => void) | undefined): void {
  sock.on('session', (session: Buffer) => {
    const peer = peerInfo(sock, p);
    const memory = serverMemoryOf(sock, p);
    if (peer && memory) rememberSession(session, { peer, protocol: sock.getProtocol() ?? '', memory });
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
  const hello = helloFor(p.tls);
  const attempt = (h: 'full' | 'lean') => {
    const sock = tls.connect({ ...tlsConnectOptions(p.tls, h), host: p.host, port: p.port });
    sock.setNoDelay(true);
    let tcpUp = false;
    sock.once('connect', () => {
      tcpUp = true;
    });
    trackSessions(sock, p.tls, p.onSession);
    return whenReady(sock, 'secureConnect', p.timeoutMs, p.signal, () => (tcpUp ? 'tls' : 'tcp'), () => checkEstablished(sock, p.tls), 'connect and TLS handshake');
  };
  if (hello === 'full') return attempt('full');
  const started = Date.now();
  return attempt('lean').catch((err: Pop3Error) => {
    // The server no longer takes the lean hello (say, TLS 1.3 was switched off): forget the session and try once
    // more with the full hello. Certificates, timeouts and aborts are final either way.
    if (err.code !== 'ETLS') throw err;
    refuseLean(p.tls);
    const left = p.timeoutMs - (Date.now() - started);
    if (left <= 0) throw err;
    return openTransport({ ...p, timeoutMs: left, tls: { ...p.tls, session: undefined } });
  });
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
  const hello = helloFor(p.tls);
  const sock = tls.connect({ ...tlsConnectOptions(p.tls, hello), socket: plain });
  trackSessions(sock, p.tls, p.onSession);
  // Errors of the underlying socket surface on the TLS socket; keep the plain one quiet.
  plain.on('error', () => {});
  const ready = whenReady(sock, 'secureConnect', p.timeoutMs, p.signal, () => 'tls', () => checkEstablished(sock, p.tls), 'STLS handshake');
  // The plain socket is spent after a failed handshake: no retry here, but the next session sends the full hello.
  if (hello === 'lean') ready.catch((err: Pop3Error) => (err.code === 'ETLS' ? refuseLean(p.tls) : undefined));
  return ready;
}
