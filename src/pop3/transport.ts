// Opens the byte stream under a POP3 session: TCP, implicit TLS, or an in-place STLS upgrade, with verification always on.
//
// Certificate policy: the chain and the host name are ALWAYS verified (rejectUnauthorized cannot be turned
// off). `ca` adds trust anchors to Node's bundled roots instead of replacing them. A `fingerprint` pin is
// checked IN ADDITION to chain verification (a pin alone does not make a self-signed certificate
// acceptable: add it with `ca`), and also on resumed sessions, where Node skips its own identity check.
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

export function tlsConnectOptions(p: TlsParams): tls.ConnectionOptions {
  const name = verifyName(p);
  const opts: tls.ConnectionOptions = {
    rejectUnauthorized: true,
    minVersion: p.minTlsVersion ?? 'TLSv1.2',
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
  };
  // RFC 6066 forbids IP literals in SNI; the identity check above still uses the name.
  if (!net.isIP(name)) opts.servername = name;
  if (p.ca !== undefined) opts.ca = [...tls.rootCertificates, typeof p.ca === 'string' ? p.ca : p.ca.toString('utf8')];
  if (p.session) opts.session = p.session;
  return opts;
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
  return new Pop3Error(out, `${out === 'ECONNECT' ? 'connect' : 'TLS'} failed: ${msg}${code ? ` (${code})` : ''}`, { cause: err });
}

/** Called once the handshake finished: pin check (also on resumed sessions) and a last authorisation check. */
export function checkEstablished(sock: tls.TLSSocket, p: TlsParams): Pop3Error | null {
  if (!sock.authorized) {
    return new Pop3Error('ECERT', `certificate not trusted: ${String(sock.authorizationError ?? 'unknown')}`);
  }
  if (p.fingerprint) {
    const cert = sock.getPeerCertificate();
    const got = normalizeFingerprint(cert?.fingerprint256 ?? '');
    const want = normalizeFingerprint(p.fingerprint);
    if (got !== want) {
      return new Pop3Error('EFINGERPRINT', `certificate fingerprint ${cert?.fingerprint256 ?? '(none)'} does not match the pinned one`);
    }
  }
  return null;
}

export function describeTls(sock: tls.TLSSocket): TlsInfo {
  const cert = sock.getPeerCertificate();
  return {
    protocol: sock.getProtocol() ?? '',
    cipher: sock.getCipher()?.name ?? '',
    authorized: sock.authorized,
    peerCertificate: {
      subject: certName(cert?.subject),
      issuer: certName(cert?.issuer),
      validFrom: cert?.valid_from ?? '',
      validTo: cert?.valid_to ?? '',
      fingerprint256: cert?.fingerprint256 ?? '',
    },
    resumed: sock.isSessionReused(),
  };
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
    const onClose = () => finish(new Pop3Error(phaseOf() === 'tcp' ? 'ECONNECT' : 'ETLS', `connection closed during ${what}`));
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
    const sock = net.connect({ host: p.host, port: p.port });
    return whenReady(sock, 'connect', p.timeoutMs, p.signal, () => 'tcp', null, 'connect');
  }
  const sock = tls.connect({ ...tlsConnectOptions(p.tls), host: p.host, port: p.port });
  let tcpUp = false;
  sock.once('connect', () => {
    tcpUp = true;
  });
  if (p.onSession) sock.on('session', p.onSession);
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
  if (p.onSession) sock.on('session', p.onSession);
  // Errors of the underlying socket surface on the TLS socket; keep the plain one quiet.
  plain.on('error', () => {});
  return whenReady(sock, 'secureConnect', p.timeoutMs, p.signal, () => 'tls', () => checkEstablished(sock, p.tls), 'STLS handshake');
}
