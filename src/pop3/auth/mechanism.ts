// The shape every SASL mechanism implements: an optional initial response, answers to challenges, and a final check.
import type { Pop3Error } from '../errors.js';

export type SaslStep = { response: Buffer } | { cancel: Pop3Error };

export interface SaslMechanism {
  /** Name as sent in AUTH, upper case ("SCRAM-SHA-256"). */
  readonly name: string;
  /** Initial response (RFC 4422 / RFC 5034), or null when the mechanism has none. */
  initialResponse(): Buffer | null;
  /** Answer one server challenge (already base64-decoded). */
  step(challenge: Buffer): SaslStep | Promise<SaslStep>;
  /** After "+OK": an error when the mechanism did not complete (e.g. SCRAM server signature never verified). */
  finish(): Pop3Error | null;
  /** After "-ERR": extra detail gathered from the exchange (OAuth error JSON), or undefined. */
  failureDetail?(): string | undefined;
}
