// Which authentication mechanism to use, and whether it may be used on this transport (no cleartext or weak secrets without opt-in).
//
// Classes: SCRAM-* never disclose the password and resist replay: allowed everywhere.
// CRAM-MD5 and APOP are "weak" (offline dictionary attack on a sniffed exchange), PLAIN, LOGIN, USER/PASS,
// XOAUTH2 and OAUTHBEARER send the secret itself ("cleartext"). Weak and cleartext mechanisms need TLS,
// or `allowInsecureAuth: true` (the YAML key `allow_insecure_auth`); otherwise EINSECURE.
// `auto` order inside TLS: PLAIN first (one round trip; the verified TLS channel already protects it), then
// SCRAM-SHA-256 > SCRAM-SHA-1 > CRAM-MD5 > LOGIN > USER > APOP. Without TLS: SCRAM-SHA-256 > SCRAM-SHA-1 > CRAM-MD5 >
// PLAIN > LOGIN > USER > APOP (APOP last: weak and tied to MD5), cleartext ones only with opt-in. With only an access
// token: OAUTHBEARER > XOAUTH2.
import type { Capabilities } from '../capabilities.js';
import { Pop3Error } from '../errors.js';

export type AuthMechanism =
  | 'auto'
  | 'user'
  | 'apop'
  | 'plain'
  | 'login'
  | 'cram-md5'
  | 'scram-sha-1'
  | 'scram-sha-256'
  | 'xoauth2'
  | 'oauthbearer';

export type ConcreteMechanism = Exclude<AuthMechanism, 'auto'>;

export type MechanismClass = 'strong' | 'weak' | 'cleartext';

export const MECHANISM_CLASS: Record<ConcreteMechanism, MechanismClass> = {
  'scram-sha-256': 'strong',
  'scram-sha-1': 'strong',
  'cram-md5': 'weak',
  apop: 'weak',
  plain: 'cleartext',
  login: 'cleartext',
  user: 'cleartext',
  xoauth2: 'cleartext',
  oauthbearer: 'cleartext',
};

const PASSWORD_ORDER: ConcreteMechanism[] = ['scram-sha-256', 'scram-sha-1', 'cram-md5', 'plain', 'login', 'user', 'apop'];
/**
 * Inside verified TLS a SCRAM exchange buys little (it keeps the password from the server itself) and costs two more
 * round trips and about 600 bytes on every poll; PLAIN is what a metered link wants. `auth: scram-sha-256` keeps SCRAM.
 */
const TLS_PASSWORD_ORDER: ConcreteMechanism[] = ['plain', ...PASSWORD_ORDER.filter((m) => m !== 'plain')];
const TOKEN_ORDER: ConcreteMechanism[] = ['oauthbearer', 'xoauth2'];

export function isSasl(m: ConcreteMechanism): boolean {
  return m !== 'user' && m !== 'apop';
}

export interface AuthEnvironment {
  /** The transport is TLS (implicit or after STLS). */
  secure: boolean;
  capabilities: Capabilities | null;
  apopTimestamp: string | null;
  allowInsecureAuth: boolean;
  hasPassword: boolean;
  hasToken: boolean;
}

/** Whether the server says it offers `m`. With no CAPA, USER and SASL are unknown: assume USER only. */
export function isOffered(m: ConcreteMechanism, env: AuthEnvironment): boolean {
  if (m === 'apop') return env.apopTimestamp !== null;
  if (m === 'user') return env.capabilities === null || env.capabilities.has('USER');
  if (env.capabilities === null) return false;
  return env.capabilities.saslMechanisms.includes(m.toUpperCase());
}

export function isPermitted(m: ConcreteMechanism, env: AuthEnvironment): boolean {
  return env.secure || env.allowInsecureAuth || MECHANISM_CLASS[m] === 'strong';
}

/** Error texts name the config keys a user can change (`tls`, `auth`, `allow_insecure_auth`), not option names. */
function insecureError(m: ConcreteMechanism): Pop3Error {
  const why = MECHANISM_CLASS[m] === 'weak' ? 'it is a weak mechanism' : 'it sends the secret in cleartext';
  return new Pop3Error(
    'EINSECURE',
    `refusing ${m.toUpperCase()} on an unencrypted connection: ${why}; use tls: implicit or starttls, or set allow_insecure_auth: true`,
  );
}

export interface MechanismRequest extends AuthEnvironment {
  requested: AuthMechanism;
  /** Mechanisms this server refused before without a response code: tried last. */
  avoid?: readonly ConcreteMechanism[];
}

/** Pick the mechanism for a login request (lower-case name), or throw ENO_MECHANISM / EINSECURE. */
export function chooseMechanism(req: MechanismRequest): ConcreteMechanism {
  return candidateMechanisms(req)[0]!;
}

/**
 * Every mechanism a login may try, best first: the requested one alone, or for `auto` each offered and permitted one
 * in the order above. `avoid` (mechanisms this server refused before without a response code) go last, in order.
 * Never empty: throws ENO_MECHANISM or EINSECURE instead.
 */
export function candidateMechanisms(req: MechanismRequest): ConcreteMechanism[] {
  const { requested, avoid, ...env } = req;
  if (requested !== 'auto') {
    const needsToken = TOKEN_ORDER.includes(requested);
    if (needsToken && !env.hasToken) throw new Pop3Error('ENO_MECHANISM', `auth: ${requested} needs an OAuth access token (oauth or provider)`);
    if (!needsToken && !env.hasPassword) throw new Pop3Error('ENO_MECHANISM', `auth: ${requested} needs a password (password or password_file)`);
    if (requested === 'apop' && env.apopTimestamp === null) {
      throw new Pop3Error('ENO_MECHANISM', 'auth: apop, but the greeting carries no timestamp (the server does not offer APOP)');
    }
    if (isSasl(requested) && env.capabilities !== null && !isOffered(requested, env)) {
      throw new Pop3Error('ENO_MECHANISM', `auth: ${requested}, but the server does not offer SASL ${requested.toUpperCase()}; try auth: auto`);
    }
    if (!isPermitted(requested, env)) throw insecureError(requested);
    return [requested];
  }
  const order = env.hasPassword ? (env.secure ? TLS_PASSWORD_ORDER : PASSWORD_ORDER) : env.hasToken ? TOKEN_ORDER : [];
  if (order.length === 0) throw new Pop3Error('ENO_MECHANISM', 'neither a password nor an OAuth access token is configured (password, password_file or oauth)');
  const offered = order.filter((m) => isOffered(m, env));
  if (offered.length === 0) throw new Pop3Error('ENO_MECHANISM', 'the server offers no mechanism usable with the configured credentials (see pop2mqtt probe)');
  const usable = offered.filter((m) => isPermitted(m, env));
  if (usable.length === 0) throw insecureError(offered[0]!);
  const avoided = new Set(avoid ?? []);
  return [...usable.filter((m) => !avoided.has(m)), ...usable.filter((m) => avoided.has(m))];
}
