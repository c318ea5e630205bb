// What POP3 clients remember between sessions, in one object the caller owns and hands to every connect (one per agent; a test makes a fresh one).
//
// - TLS sessions this memory saw, each with the certificate and protocol of the full handshake it came from and
//   what that chain of resumptions learned (its CAPA): a resumed handshake carries no certificate, and a ticket
//   proves the same server, so both stay true along the chain (bounded, oldest dropped);
// - servers that refused the lean resumption hello (they get the full one from then on);
// - secure contexts, one per (hello, minimum version, extra CA): building one parses the whole root store (about
//   0.6 MiB of native memory that V8 does not see), so a context per poll would grow a daemon's RSS;
// - the caller's ServerNotebook, which outlives the process (the agent keeps it in `servers.json`).
import { createHash } from 'node:crypto';
import type * as tls from 'node:tls';
import type { ConcreteMechanism } from './auth/policy.js';

/** What was learned about one server (host, port and certificate) that outlives a TLS resumption chain and a restart. */
export interface ServerFacts {
  /** Mechanisms the server refused without a response code while another one then worked: tried last from then on. */
  refusedMechanisms?: ConcreteMechanism[];
}

/** Per-server notes the caller keeps where it likes (the agent: `servers.json` in its state directory). */
export interface ServerNotebook {
  recall(server: string): ServerFacts | undefined;
  note(server: string, facts: ServerFacts): void;
}

/** The notebook key of a server: host, port and the SHA-256 fingerprint of its certificate ('' without TLS). */
export function serverKeyOf(host: string, port: number, fingerprint256: string): string {
  return `${host.toLowerCase()}:${port}/${fingerprint256.replace(/:/g, '').toLowerCase()}`;
}

/** The certificate a handshake presented, as reported to the caller and remembered for resumed sessions. */
export interface PeerCertificateInfo {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

/**
 * What the sessions of one chain (a full handshake and every session resumed from it) learned about their server:
 * a ticket proves the same server (it holds the ticket key), so this stays true across resumptions.
 */
export interface ChainMemory {
  /** CAPA lines read before login, when a session of this chain read them. */
  capabilities: string[] | null;
}

export interface RememberedSession {
  peer: PeerCertificateInfo;
  protocol: string;
  chain: ChainMemory;
}

/** Sessions remembered at most (oldest dropped). */
const SESSION_MEMORY = 256;
/** Secure contexts kept at most (oldest dropped). */
const CONTEXT_MEMORY = 16;

function sessionKey(session: Buffer): string {
  return createHash('sha256').update(session).digest('hex');
}

/** Insert as newest and drop the oldest beyond `max`. */
function putBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}

export class Pop3Memory {
  /** The caller's per-server notebook, consulted and told at login; none: nothing is noted. */
  readonly notes: ServerNotebook | undefined;
  private readonly sessions = new Map<string, RememberedSession>();
  private readonly leanRefusals = new Set<string>();
  private readonly contexts = new Map<string, tls.SecureContext>();
  private readonly chains = new WeakMap<tls.TLSSocket, ChainMemory>();

  constructor(o: { notes?: ServerNotebook | undefined } = {}) {
    this.notes = o.notes;
  }

  /** What a TLS session (a ticket this memory saw) came from; undefined for an unknown one or none. */
  recall(session: Buffer | undefined): RememberedSession | undefined {
    return session ? this.sessions.get(sessionKey(session)) : undefined;
  }

  remember(session: Buffer, entry: RememberedSession): void {
    putBounded(this.sessions, sessionKey(session), entry, SESSION_MEMORY);
  }

  forget(session: Buffer | undefined): void {
    if (session) this.sessions.delete(sessionKey(session));
  }

  /**
   * The chain memory of a connection, the same object for its whole life: inherited from `resumedFrom` when the
   * handshake resumed a remembered session, fresh otherwise.
   */
  chainOf(sock: tls.TLSSocket, resumedFrom: Buffer | undefined): ChainMemory {
    let m = this.chains.get(sock);
    if (!m) {
      m = (sock.isSessionReused() ? this.recall(resumedFrom)?.chain : undefined) ?? { capabilities: null };
      this.chains.set(sock, m);
    }
    return m;
  }

  /** A server (see client-hello.ts serverKey) refused the lean hello: it gets the full one from then on. */
  refuseLean(server: string): void {
    this.leanRefusals.add(server);
  }

  refusedLean(server: string): boolean {
    return this.leanRefusals.has(server);
  }

  /** The secure context stored under `key`, built by `build` the first time. */
  secureContext(key: string, build: () => tls.SecureContext): tls.SecureContext {
    let ctx = this.contexts.get(key);
    if (!ctx) {
      ctx = build();
      putBounded(this.contexts, key, ctx, CONTEXT_MEMORY);
    }
    return ctx;
  }
}
