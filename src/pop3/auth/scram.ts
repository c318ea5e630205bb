// SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677) client without channel binding; the server must prove it knows the password.
//
// Password and user name preparation: SASLprep (RFC 4013) via @mongodb-js/saslprep; see prepareSaslString.
import type Saslprep from '@mongodb-js/saslprep';
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { Pop3Error } from '../errors.js';
import { MAX_SCRAM_ITERATIONS } from '../limits.js';
import type { SaslMechanism, SaslStep } from './mechanism.js';
import { saslName } from './simple-mechanisms.js';

export type ScramHash = 'sha1' | 'sha256';

const GS2_HEADER = 'n,,';

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

function hmac(hash: ScramHash, key: Buffer, data: string): Buffer {
  return createHmac(hash, key).update(data, 'utf8').digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function pbkdf2Async(password: string, salt: Buffer, iterations: number, hash: ScramHash): Promise<Buffer> {
  const len = hash === 'sha1' ? 20 : 32;
  return new Promise((resolve, reject) =>
    pbkdf2(Buffer.from(password, 'utf8'), salt, iterations, len, hash, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

let saslprep: typeof Saslprep | undefined;

/** Loads SASLprep (its Unicode tables cost about 5 MiB): only SCRAM logins need it. Await before scramMechanism(). */
export async function loadSaslprep(): Promise<void> {
  saslprep ??= (await import('@mongodb-js/saslprep')).default;
}

/**
 * SASLprep (RFC 4013) of a SCRAM password or user name: non-ASCII spaces become U+0020, "mapped to nothing"
 * characters (soft hyphen, zero-width joiners...) are dropped, NFKC is applied, and prohibited characters
 * (control characters, private use, surrogates...) or mixed right-to-left text are refused. Code points
 * unassigned in Unicode 3.2 (newer emoji, say) are let through as the RFC allows for queries, so such
 * passwords keep working with servers that store them as typed. Throws EINVALID, naming no character.
 */
export function prepareSaslString(value: string, what: 'password' | 'user name', mechanism: string): string {
  if (!saslprep) throw new Error('internal error: SCRAM before loadSaslprep()');
  try {
    return saslprep(value, { allowUnassigned: true });
  } catch (err) {
    const why = err instanceof Error && /bidirectional/i.test(err.message) ? 'mixes right-to-left and left-to-right text' : 'contains a character SASLprep prohibits (a control, private-use or non-character code point)';
    throw new Pop3Error('EINVALID', `${mechanism}: the ${what} ${why} (RFC 4013); use auth: plain over TLS, or change it`);
  }
}

export interface ScramOptions {
  /** Fixed client nonce, for tests against RFC vectors only. */
  clientNonce?: string;
}

export function scramMechanism(hash: ScramHash, username: string, password: string, o: ScramOptions = {}): SaslMechanism {
  const name = hash === 'sha1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256';
  const clientNonce = o.clientNonce ?? randomBytes(24).toString('base64').replace(/[^A-Za-z0-9]/g, 'x');
  const preparedPassword = prepareSaslString(password, 'password', name);
  const clientFirstBare = `n=${saslName(prepareSaslString(username, 'user name', name))},r=${clientNonce}`;
  let round = 0;
  let expectedServerSig: Buffer | null = null;
  let verified = false;

  const sigError = (why: string) =>
    new Pop3Error('ESCRAM_SERVER_SIGNATURE', `${name}: ${why}; the server did not prove it knows the password`);

  async function onServerFirst(challenge: Buffer): Promise<SaslStep> {
    const serverFirst = challenge.toString('utf8');
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const saltB64 = attrs.get('s');
    const iterText = attrs.get('i');
    if (attrs.has('m')) return { cancel: new Pop3Error('EPROTOCOL', `${name}: server requires an unsupported extension`) };
    if (!nonce || !saltB64 || !iterText || !nonce.startsWith(clientNonce) || nonce.length <= clientNonce.length) {
      return { cancel: new Pop3Error('EPROTOCOL', `${name}: malformed server-first-message or nonce mismatch`) };
    }
    const iterations = Number(iterText);
    if (!/^\d+$/.test(iterText) || iterations < 1 || iterations > MAX_SCRAM_ITERATIONS) {
      return { cancel: new Pop3Error('EPROTOCOL', `${name}: unacceptable iteration count ${iterText}`) };
    }
    const salt = Buffer.from(saltB64, 'base64');
    const salted = await pbkdf2Async(preparedPassword, salt, iterations, hash);
    const clientKey = hmac(hash, salted, 'Client Key');
    const storedKey = createHash(hash).update(clientKey).digest();
    const clientFinalNoProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${clientFirstBare},${serverFirst},${clientFinalNoProof}`;
    const clientSig = hmac(hash, storedKey, authMessage);
    const proof = xor(clientKey, clientSig).toString('base64');
    const serverKey = hmac(hash, salted, 'Server Key');
    expectedServerSig = hmac(hash, serverKey, authMessage);
    return { response: Buffer.from(`${clientFinalNoProof},p=${proof}`, 'utf8') };
  }

  function onServerFinal(challenge: Buffer): SaslStep {
    const attrs = parseAttributes(challenge.toString('utf8'));
    const err = attrs.get('e');
    if (err !== undefined) return { cancel: new Pop3Error('EAUTH', `${name}: server reported ${err}`) };
    const v = attrs.get('v');
    if (v === undefined || !expectedServerSig) return { cancel: sigError('server-final-message without a signature') };
    const got = Buffer.from(v, 'base64');
    if (got.length !== expectedServerSig.length || !timingSafeEqual(got, expectedServerSig)) {
      return { cancel: sigError('wrong server signature') };
    }
    verified = true;
    return { response: Buffer.alloc(0) };
  }

  return {
    name,
    initialResponse: () => Buffer.from(GS2_HEADER + clientFirstBare, 'utf8'),
    step: (challenge) => {
      round++;
      if (round === 1) return onServerFirst(challenge);
      if (round === 2) return onServerFinal(challenge);
      return { cancel: new Pop3Error('EPROTOCOL', `${name}: unexpected extra challenge`) };
    },
    finish: () => (verified ? null : sigError('authentication succeeded without a verified server signature')),
  };
}
