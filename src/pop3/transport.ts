// Opens the byte stream under a POP3 session: TCP, implicit TLS, or an in-place STLS upgrade, under one connect deadline and the abort signal.
//
// What is verified is tls-policy.ts; which hello is sent is client-hello.ts; what is remembered between sessions
// (tickets with their certificate and chain memory, lean-hello refusals, secure contexts) is the caller's Pop3Memory.
// A lean hello the server refuses is retried at once with the full one (implicit TLS) or left to the next
// session (STLS, whose plain socket is spent).
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Pop3Error } from './errors.js';
import { helloFor, refuseLean, tlsConnectOptions, type Hello } from './client-hello.js';
import { checkEstablished, mapSocketError, peerInfo, type TlsParams } from './tls-policy.js';
import type { PhaseDeadline, SessionDeadline } from './deadline.js';
import type { Pop3Memory } from './memory.js';

export type Pop3Socket = net.Socket | tls.TLSSocket;

/** What a TLS connection needs beyond its socket: the parameters, the memory, the session's deadline, the abort signal. */
export interface TlsPhase {
  tls: TlsParams;
  memory: Pop3Memory;
  /** Each connect (and the STLS handshake) is a connect phase of it, started once the socket is being opened. */
  deadline: SessionDeadline;
  signal?: AbortSignal | undefined;
  /** Latest TLS session ticket, for resumption. */
  onSession?: ((session: Buffer) => void) | undefined;
}

export interface ConnectParams extends TlsPhase {
  host: string;
  port: number;
  implicitTls: boolean;
}

function abortError(): Pop3Error {
  return new Pop3Error('EABORTED', 'aborted by caller');
}

/** Remember each new session with this connection's certificate, protocol and chain memory, then pass it on. */
function trackSessions(sock: tls.TLSSocket, p: TlsPhase): void {
  sock.on('session', (session: Buffer) => {
    const peer = peerInfo(sock, p.tls, p.memory);
    if (peer) p.memory.remember(session, { peer, protocol: sock.getProtocol() ?? '', chain: p.memory.chainOf(sock, p.tls.session) });
    p.onSession?.(session);
  });
}

/**
 * Wait until `sock` reaches `readyEvent`, under the phase deadline and the abort signal.
 * On failure the socket is destroyed and the promise rejects with a typed error.
 */
function whenReady<T extends Pop3Socket>(
  sock: T,
  readyEvent: 'connect' | 'secureConnect',
  deadline: PhaseDeadline,
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
    const timer = setTimeout(() => finish(deadline.timeoutError(what)), deadline.remaining());
    sock.once(readyEvent, onReady);
    sock.on('error', onError);
    sock.once('close', onClose);
    if (signal) {
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

/**
 * DNS + TCP (+ TLS for implicit TLS) under one connect phase; `phase` is the one a retry with the full hello shares.
 * The phase starts once the socket is being opened: building the secure context (local work) does not count.
 */
export function openTransport(p: ConnectParams, phase?: PhaseDeadline): Promise<Pop3Socket> {
  if (p.signal?.aborted) return Promise.reject(abortError());
  if (!p.implicitTls) {
    // noDelay: a pipelined batch must not wait for Nagle's algorithm (an extra round trip per batch on a slow link).
    const sock = net.connect({ host: p.host, port: p.port, noDelay: true });
    return whenReady(sock, 'connect', p.deadline.connectPhase(), p.signal, () => 'tcp', null, 'connect');
  }
  const attempt = (hello: Hello) => {
    const sock = tls.connect({ ...tlsConnectOptions(p.tls, p.memory, hello), host: p.host, port: p.port });
    sock.setNoDelay(true);
    let tcpUp = false;
    sock.once('connect', () => {
      tcpUp = true;
    });
    trackSessions(sock, p);
    phase ??= p.deadline.connectPhase();
    return whenReady(sock, 'secureConnect', phase, p.signal, () => (tcpUp ? 'tls' : 'tcp'), () => checkEstablished(sock, p.tls, p.memory), 'connect and TLS handshake');
  };
  if (helloFor(p.tls, p.memory) === 'full') return attempt('full');
  return attempt('lean').catch((err: Pop3Error) => {
    // The server no longer takes the lean hello (say, TLS 1.3 was switched off): forget the session and try once
    // more with the full hello, in what is left of the same deadline. Certificates, timeouts and aborts are final.
    if (err.code !== 'ETLS') throw err;
    refuseLean(p.tls, p.memory);
    if (phase!.expired) throw err;
    return openTransport({ ...p, tls: { ...p.tls, session: undefined } }, phase);
  });
}

/** Upgrade a connected plain socket in place (after "+OK" to STLS). */
export function upgradeTransport(plain: net.Socket, p: TlsPhase): Promise<tls.TLSSocket> {
  if (p.signal?.aborted) {
    plain.destroy();
    return Promise.reject(abortError());
  }
  const hello = helloFor(p.tls, p.memory);
  const sock = tls.connect({ ...tlsConnectOptions(p.tls, p.memory, hello), socket: plain });
  trackSessions(sock, p);
  // Errors of the underlying socket surface on the TLS socket; keep the plain one quiet.
  plain.on('error', () => {});
  const ready = whenReady(sock, 'secureConnect', p.deadline.connectPhase(), p.signal, () => 'tls', () => checkEstablished(sock, p.tls, p.memory), 'STLS handshake');
  // The plain socket is spent after a failed handshake: no retry here, but the next session sends the full hello.
  if (hello === 'lean') ready.catch((err: Pop3Error) => (err.code === 'ETLS' ? refuseLean(p.tls, p.memory) : undefined));
  return ready;
}
