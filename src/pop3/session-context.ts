// What a command module may see of a session: the connection, the negotiated capabilities, the state gate and the logger.
import type { Capabilities } from './capabilities.js';
import type { Pop3Connection } from './connection.js';
import type { Logger } from '../log.js';

export type SessionState = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE' | 'CLOSED';

export interface SessionContext {
  readonly conn: Pop3Connection;
  readonly logger: Logger;
  readonly capabilities: Capabilities | null;
  /** Cap for buffered multi-line replies (fatal ELIMIT beyond it). */
  readonly maxReplyBytes: number;
  /** Throws ESTATE (or the connection's closed error) unless the session is in one of `allowed`. */
  requireState(command: string, allowed: readonly SessionState[]): void;
  /** Whether TOP works: learned from CAPA, or by trying it when CAPA is unsupported. */
  topSupport: 'yes' | 'no' | 'unknown';
  /** Set once the TOP fallback was logged in this session. */
  topFallbackLogged: boolean;
  /** UIDL (the whole listing) was answered "-ERR" in this session, whatever CAPA said: it is not asked again. */
  uidlRefused: boolean;
}
