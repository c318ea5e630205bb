// Per-message failure accounting of a poll: a failed message is retried at later polls up to MAX_ATTEMPTS, parked at once when it breaks a size limit, and charged with a fatal reply it caused.
import type { Logger } from '../log.js';
import { Pop3Error } from '../pop3/index.js';
import type { MessageData } from '../rules/index.js';
import type { MailboxState } from '../state/mailbox-state.js';

/** Failed attempts after which a message is left on the server for a person (and no longer fetched). */
export const MAX_ATTEMPTS = 5;

/** A message in the batch being evaluated. */
export interface BatchItem {
  data: MessageData;
  failed: boolean;
  /** Its alerts were queued (or it was found to have none): not queued again. */
  queued?: boolean;
}

/** Whether a message has attempts left (it was not parked for a person). */
export function hasAttemptsLeft(state: MailboxState, uid: string): boolean {
  return (state.data.failures[uid] ?? 0) < MAX_ATTEMPTS;
}

export class MessageFailures {
  constructor(
    private readonly state: MailboxState,
    private readonly logger: Logger,
    /** The poll's count of failed messages. */
    private readonly counts: { failed: number },
    /** The session's fatal error, if any: what tells a broken session from a failure of one message. */
    private readonly sessionFatal: () => Pop3Error | null,
  ) {}

  fail(it: BatchItem, why: string, park = false): void {
    it.failed = true;
    const n = this.state.recordFailure(it.data.uid, park ? MAX_ATTEMPTS : 0);
    this.counts.failed++;
    if (n >= MAX_ATTEMPTS) this.logger.error('giving up on a message after repeated failures; it stays on the server for a person', { uid: it.data.uid, attempts: n, error: why });
    else this.logger.warn('message could not be handled; retrying next poll', { uid: it.data.uid, attempt: n, error: why });
  }

  /**
   * A reply that breaks a size limit (a line too long, a header block or TOP reply too large) is read to its end and
   * dropped by the client: only that message fails (ELIMIT) and the session goes on. The breach is in the message
   * itself and does not go away, so the message is parked at once: it stays on the server for a person, never
   * deleted. Any other per-message failure is retried at the next poll, up to MAX_ATTEMPTS.
   */
  failMessage(it: BatchItem, err: unknown): void {
    const park = err instanceof Pop3Error && err.code === 'ELIMIT';
    this.fail(it, err instanceof Pop3Error ? `${err.code}: ${err.message}` : (err as Error).message, park);
  }

  /**
   * A fatal session error caused by a reply (malformed, a status line over the limits) is charged to the message
   * being read, so one poisonous message is parked after a few polls instead of blocking the mailbox. Only errors the
   * message itself can cause: a cut, a timeout or a slow link is the network's fault, not the message's.
   */
  charge(it: BatchItem, err: unknown): void {
    if (!(err instanceof Pop3Error) || !this.sessionFatal() || !['ELIMIT', 'EPROTOCOL'].includes(err.code)) return;
    this.failMessage(it, err);
  }
}
