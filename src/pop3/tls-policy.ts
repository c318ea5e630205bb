// Certificate and pin policy of a POP3 TLS connection: which name is verified, which remembered session may be offered, what a finished handshake must prove, and how socket/TLS errors are reported.
//
// The chain and the host name are ALWAYS verified (rejectUnauthorized cannot be turned off). `ca` adds trust
// anchors to Node's bundled roots instead of replacing them (client-hello.ts adds it to a copy of Node's parsed
// store). A `fingerprint` pin is checked IN ADDITION to chain verification (a pin alone does not make a self-signed
// certificate acceptable: add it with `ca`).
// A resumed handshake carries no certificate (Node reports none and skips its identity check), so a resumed
// connection reports the certificate remembered with its session (see memory.ts), and with a pin a session is only
// offered when its remembered certificate matches the pin (otherwise a full handshake is done).
import * as net from 'node:net';
import * as tls from 'node:tls';
import { compileIpRegexOnce } from '../ip-regex-compile.js';
import { Pop3Error, type Pop3ErrorCode } from './errors.js';
import type { PeerCertificateInfo, Pop3Memory } from './memory.js';

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

export interface TlsInfo {
  protocol: string;
  cipher: string;
  authorized: boolean;
  peerCertificate: PeerCertificateInfo;
  resumed: boolean;
}

/** Normalise a SHA-256 fingerprint: hex digits only, lower case. */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/[:\s]/g, '').toLowerCase();
}

/** The name the certificate must carry: servername option, else host. */
export function verifyName(p: TlsParams): string {
  return p.servername ?? p.host;
}

/**
 * The verification part of Node's connect options: always verified, the certificate must carry the verified name,
 * and that name is the SNI unless it is an IP address (RFC 6066 forbids IP literals there).
 */
export function verificationOptions(p: TlsParams): tls.ConnectionOptions {
  const name = verifyName(p);
  compileIpRegexOnce();
  return {
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    ...(net.isIP(name) ? {} : { servername: name }),
  };
}

function certName(obj: unknown): string {
  if (!obj || typeof obj !== 'object') return '';
  return Object.entries(obj as Record<string, unknown>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

/** Without a pin any session may be offered; with one only a session known to come from the pinned certificate. */
export function sessionUsable(p: TlsParams, memory: Pop3Memory): boolean {
  if (!p.fingerprint) return true;
  const peer = memory.recall(p.session)?.peer;
  return peer !== undefined && normalizeFingerprint(peer.fingerprint256) === normalizeFingerprint(p.fingerprint);
}

/** The server certificate of this connection: from the handshake, or for a resumed one, from memory. */
export function peerInfo(sock: tls.TLSSocket, p: TlsParams, memory: Pop3Memory): PeerCertificateInfo | null {
  if (sock.isSessionReused()) return memory.recall(p.session)?.peer ?? null;
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

/** Called once the handshake finished: pin check (also on resumed sessions) and a last authorisation check. */
export function checkEstablished(sock: tls.TLSSocket, p: TlsParams, memory: Pop3Memory): Pop3Error | null {
  if (!sock.authorized) {
    return new Pop3Error('ECERT', `certificate not trusted: ${String(sock.authorizationError ?? 'unknown')}`);
  }
  if (p.fingerprint) {
    const fp = peerInfo(sock, p, memory)?.fingerprint256;
    if (!fp || normalizeFingerprint(fp) !== normalizeFingerprint(p.fingerprint)) {
      return new Pop3Error('EFINGERPRINT', `certificate fingerprint ${fp ?? '(unknown)'} does not match the pinned one`);
    }
  }
  return null;
}

export function describeTls(sock: tls.TLSSocket, p: TlsParams, memory: Pop3Memory): TlsInfo {
  const peer = peerInfo(sock, p, memory);
  return {
    protocol: sock.getProtocol() ?? '',
    cipher: sock.getCipher()?.name ?? '',
    authorized: sock.authorized,
    peerCertificate: peer ?? { subject: '', issuer: '', validFrom: '', validTo: '', fingerprint256: '' },
    resumed: sock.isSessionReused(),
  };
}

const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME/;
const TRANSIENT_NET = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);

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
