// Runs one authentication exchange: USER/PASS, APOP, or SASL AUTH (RFC 5034) with initial response where it fits.
//
// A "-ERR" without a response code during login maps to EAUTH (RFC 3206 servers add [AUTH], [IN-USE],
// [SYS/TEMP]... when they can; without one, a credentials problem is the likely cause).
import { createHash } from 'node:crypto';
import { Pop3Error, errorFromReply } from '../errors.js';
import { MAX_COMMAND_OCTETS } from '../limits.js';
import type { Pop3Connection } from '../connection.js';
import type { DecodedReply } from '../reader.js';
import type { ConcreteMechanism } from './policy.js';
import type { SaslMechanism } from './mechanism.js';
import { loadSaslprep, scramMechanism } from './scram.js';
import { cramMd5Mechanism, loginMechanism, oauthBearerMechanism, plainMechanism, xoauth2Mechanism } from './simple-mechanisms.js';

export interface Credentials {
  username: string;
  password?: string | undefined;
  accessToken?: string | undefined;
}

export interface LoginTarget {
  host: string;
  port: number;
  apopTimestamp: string | null;
}

const MAX_SASL_ROUNDS = 10;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export function apopDigest(timestamp: string, password: string): string {
  return createHash('md5').update(timestamp + password, 'utf8').digest('hex');
}

export function makeSaslMechanism(m: ConcreteMechanism, cred: Credentials, target: LoginTarget): SaslMechanism {
  const pass = cred.password ?? '';
  const token = cred.accessToken ?? '';
  switch (m) {
    case 'plain':
      return plainMechanism(cred.username, pass);
    case 'login':
      return loginMechanism(cred.username, pass);
    case 'cram-md5':
      return cramMd5Mechanism(cred.username, pass);
    case 'scram-sha-1':
      return scramMechanism('sha1', cred.username, pass);
    case 'scram-sha-256':
      return scramMechanism('sha256', cred.username, pass);
    case 'xoauth2':
      return xoauth2Mechanism(cred.username, token);
    case 'oauthbearer':
      return oauthBearerMechanism(cred.username, token, target.host, target.port);
    default:
      throw new Pop3Error('ENO_MECHANISM', `${m} is not a SASL mechanism`);
  }
}

/** A refusal of a login command as a typed error (no response code: EAUTH). */
function loginFailure(command: string, r: DecodedReply): Pop3Error {
  return errorFromReply(command, r.text, 'EAUTH');
}

/**
 * USER and PASS. When the server pipelines they go out in one write (RFC 2449 allows it, and both are read by the
 * same login process even on servers that hand the session over after PASS, as Courier does); nothing follows PASS
 * before its reply.
 */
async function userPass(conn: Pop3Connection, cred: Credentials): Promise<void> {
  const userLine = { name: 'USER', line: `USER ${cred.username}`, multiline: false };
  const passLine = { name: 'PASS', line: `PASS ${cred.password ?? ''}`, logLine: 'PASS ***', multiline: false, longLine: true };
  // The login awaits PASS's reply before anything else is queued, so no barrier is needed to keep STAT behind it.
  const [u, p] = conn.pipelining
    ? conn.sendMany([userLine, passLine])
    : [conn.send({ ...userLine, barrier: true }), undefined];
  const ur = await u!;
  if (ur.status !== '+OK') {
    // A pipelined PASS after a refused USER is refused too; its reply is read and dropped.
    await p?.catch(() => undefined);
    throw loginFailure('USER', ur);
  }
  const pr = await (p ?? conn.send({ ...passLine, barrier: true }));
  if (pr.status !== '+OK') throw loginFailure('PASS', pr);
}

async function apop(conn: Pop3Connection, cred: Credentials, timestamp: string): Promise<void> {
  const digest = apopDigest(timestamp, cred.password ?? '');
  const r = await conn.send({ name: 'APOP', line: `APOP ${cred.username} ${digest}`, logLine: `APOP ${cred.username} ***`, multiline: false, barrier: true });
  if (r.status !== '+OK') throw loginFailure('APOP', r);
}

/**
 * RFC 5034 exchange. Mechanism errors cancel with "*"; a failed server proof destroys the connection. Resolves with
 * the number of server challenges ("+" replies): 0 when the initial response sufficed.
 */
export async function saslAuth(conn: Pop3Connection, mech: SaslMechanism): Promise<number> {
  const ir = mech.initialResponse();
  let irPending = ir !== null;
  let line = `AUTH ${mech.name}`;
  if (ir !== null) {
    const withIr = `${line} ${ir.length === 0 ? '=' : ir.toString('base64')}`;
    if (Buffer.byteLength(withIr) + 2 <= MAX_COMMAND_OCTETS) {
      line = withIr;
      irPending = false;
    }
  }
  const send = (l: string, logLine: string) =>
    conn.send({ name: 'AUTH', line: l, logLine, multiline: false, continuation: true, barrier: true, longLine: true });
  let r = await send(line, line === `AUTH ${mech.name}` ? line : `AUTH ${mech.name} ***`);
  let round = 0;
  for (; r.status === '+'; round++) {
    if (round >= MAX_SASL_ROUNDS) {
      const err = new Pop3Error('EPROTOCOL', `AUTH ${mech.name}: too many challenges`);
      conn.fail(err);
      throw err;
    }
    let response: Buffer;
    if (irPending) {
      irPending = false;
      response = ir!;
    } else {
      const text = r.text.trim();
      if (!BASE64_RE.test(text)) {
        await send('*', '*');
        throw new Pop3Error('EPROTOCOL', `AUTH ${mech.name}: challenge is not base64`);
      }
      const step = await mech.step(Buffer.from(text, 'base64'));
      if ('cancel' in step) {
        const reply = await send('*', '*');
        if (reply.status === '+OK') {
          // The server accepted a cancelled exchange: nothing about this session can be trusted.
          conn.fail(step.cancel);
        }
        throw step.cancel;
      }
      response = step.response;
    }
    r = await send(response.toString('base64'), '***');
  }
  if (r.status !== '+OK') {
    const err = errorFromReply('AUTH', r.text, 'EAUTH');
    const detail = mech.failureDetail?.();
    if (detail) {
      const opts: { respCode?: string; serverText: string; cause: Pop3Error } = { serverText: `${r.text} ${detail}`, cause: err };
      if (err.respCode) opts.respCode = err.respCode;
      throw new Pop3Error(err.code, `${err.message} (${detail})`, opts);
    }
    throw err;
  }
  const fin = mech.finish();
  if (fin) {
    conn.fail(fin);
    throw fin;
  }
  return round;
}

/** Authenticate with an already chosen mechanism; resolves with the number of SASL challenges (0 for USER and APOP). */
export async function authenticate(conn: Pop3Connection, m: ConcreteMechanism, cred: Credentials, target: LoginTarget): Promise<number> {
  if (m === 'user') return userPass(conn, cred).then(() => 0);
  if (m === 'apop') return apop(conn, cred, target.apopTimestamp ?? '').then(() => 0);
  if (m === 'scram-sha-1' || m === 'scram-sha-256') await loadSaslprep();
  return saslAuth(conn, makeSaslMechanism(m, cred, target));
}
