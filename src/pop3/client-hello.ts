// The ClientHello a POP3 TLS connection sends: a full one, or a lean TLS 1.3-only one to resume a TLS 1.3 session (about 135 bytes less), and the Node connect options that carry it.
//
// A server that refuses the lean hello is remembered (Pop3Memory) and gets the full hello from then on.
import { createHash } from 'node:crypto';
import * as tls from 'node:tls';
import type { Pop3Memory } from './memory.js';
import { sessionUsable, verificationOptions, verifyName, type TlsParams } from './tls-policy.js';

export type Hello = 'full' | 'lean';

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

/** The secure context of a hello, minimum version and extra CA: built once per memory and reused by every connection. */
export function secureContextFor(p: TlsParams, memory: Pop3Memory, hello: Hello = 'full'): tls.SecureContext {
  const minVersion = hello === 'lean' ? 'TLSv1.3' : (p.minTlsVersion ?? 'TLSv1.2');
  const ca = p.ca === undefined ? undefined : typeof p.ca === 'string' ? p.ca : p.ca.toString('utf8');
  const key = createHash('sha256').update(`${hello}\0${minVersion}\0${ca ?? ''}`).digest('hex');
  return memory.secureContext(key, () => {
    const options: tls.SecureContextOptions = {
      minVersion,
      ...(hello === 'lean' ? { ciphers: TLS13_SUITES, ecdhCurve: LEAN_GROUPS, sigalgs: LEAN_SIGALGS } : { ciphers: FULL_CIPHERS }),
    };
    return ca === undefined ? tls.createSecureContext(options) : withExtraCa(options, ca);
  });
}

/**
 * A context that trusts Node's bundled roots and `ca`, as `ca: [...tls.rootCertificates, ca]` does, without
 * re-parsing the ~140 bundled PEM certificates for every context (25-45 ms of the first connect, W1 in
 * docs/bench.md): Node keeps them parsed once per process, a context copies that store when a CA is added to it, and
 * `ca` is added to the copy. A Node without the native addCACert (not seen in 20 or 22) gets the list as before.
 */
function withExtraCa(options: tls.SecureContextOptions, ca: string): tls.SecureContext {
  const ctx = tls.createSecureContext(options);
  const native = (ctx as { context?: { addCACert?: unknown } }).context;
  if (native && typeof native.addCACert === 'function') {
    (native.addCACert as (pem: string) => void).call(native, ca);
    return ctx;
  }
  return tls.createSecureContext({ ...options, ca: [...tls.rootCertificates, ca] });
}

/** The server as far as lean-hello refusals go: name verified, host, port. */
function serverKey(p: TlsParams): string {
  return `${verifyName(p)}\0${p.host}\0${p.port ?? ''}`;
}

/** The server refused the lean hello: forget the session it was offered, and send it the full hello from then on. */
export function refuseLean(p: TlsParams, memory: Pop3Memory): void {
  memory.forget(p.session);
  memory.refuseLean(serverKey(p));
}

/** The hello a connection with these parameters sends: lean only to resume a session known to be TLS 1.3. */
export function helloFor(p: TlsParams, memory: Pop3Memory): Hello {
  if (memory.refusedLean(serverKey(p))) return 'full';
  return p.session && sessionUsable(p, memory) && memory.recall(p.session)?.protocol === 'TLSv1.3' ? 'lean' : 'full';
}

/** Node's connect options for this hello: the verification policy, the secure context, and the session when it may be offered. */
export function tlsConnectOptions(p: TlsParams, memory: Pop3Memory, hello: Hello = helloFor(p, memory)): tls.ConnectionOptions {
  return {
    ...verificationOptions(p),
    minVersion: hello === 'lean' ? 'TLSv1.3' : (p.minTlsVersion ?? 'TLSv1.2'),
    secureContext: secureContextFor(p, memory, hello),
    ...(p.session && sessionUsable(p, memory) ? { session: p.session } : {}),
  };
}
