// SASL mechanisms without their own cryptographic state machine: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER.
import { createHmac } from 'node:crypto';
import type { SaslMechanism, SaslStep } from './mechanism.js';

/** RFC 4616: authzid NUL authcid NUL passwd, sent as initial response. */
export function plainMechanism(username: string, password: string): SaslMechanism {
  const ir = Buffer.from(`\0${username}\0${password}`, 'utf8');
  return {
    name: 'PLAIN',
    initialResponse: () => ir,
    step: (): SaslStep => ({ response: ir }),
    finish: () => null,
  };
}

/** The LOGIN mechanism (draft-murchison-sasl-login): username, then password, each on its own challenge. */
export function loginMechanism(username: string, password: string): SaslMechanism {
  let n = 0;
  return {
    name: 'LOGIN',
    initialResponse: () => null,
    step: (): SaslStep => {
      n++;
      return { response: Buffer.from(n === 1 ? username : password, 'utf8') };
    },
    finish: () => null,
  };
}

/** RFC 2195: "user HMAC-MD5(password, challenge) in lower-case hex". */
export function cramMd5Mechanism(username: string, password: string): SaslMechanism {
  return {
    name: 'CRAM-MD5',
    initialResponse: () => null,
    step: (challenge): SaslStep => {
      const digest = createHmac('md5', Buffer.from(password, 'utf8')).update(challenge).digest('hex');
      return { response: Buffer.from(`${username} ${digest}`, 'utf8') };
    },
    finish: () => null,
  };
}

/**
 * The two bearer-token mechanisms share their shape: one initial response; on failure the server sends an error JSON
 * challenge, which is recorded and answered with `errorAck` before the final -ERR.
 */
function bearerMechanism(name: string, ir: Buffer, errorAck: Buffer): SaslMechanism {
  let detail: string | undefined;
  let sent = false;
  return {
    name,
    initialResponse: () => ir,
    step: (challenge): SaslStep => {
      if (!sent) {
        sent = true;
        if (challenge.length === 0) return { response: ir };
      }
      detail = challenge.toString('utf8');
      return { response: errorAck };
    },
    finish: () => null,
    failureDetail: () => detail,
  };
}

/** Google/Microsoft XOAUTH2: the error JSON challenge is answered with an empty response. */
export function xoauth2Mechanism(username: string, accessToken: string): SaslMechanism {
  return bearerMechanism('XOAUTH2', Buffer.from(`user=${username}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8'), Buffer.alloc(0));
}

/** RFC 5801 saslname: "=" and "," escaped. */
export function saslName(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** RFC 7628 OAUTHBEARER: the error JSON challenge is answered with a single 0x01 (kvsep). */
export function oauthBearerMechanism(username: string, accessToken: string, host: string, port: number): SaslMechanism {
  const ir = Buffer.from(`n,a=${saslName(username)},\x01host=${host}\x01port=${port}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8');
  return bearerMechanism('OAUTHBEARER', ir, Buffer.from([0x01]));
}
