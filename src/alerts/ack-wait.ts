// The alerts a poll's batches queued, written to the outbox in order and waited for together: a broker that does not answer costs one ack timeout per poll, not one per batch.
import type { Logger } from '../log.js';
import type { MailboxState } from '../state/mailbox-state.js';
import type { Outbox } from './outbox.js';
import { OrderedWrites } from './ordered-writes.js';
import type { AlertQueue } from './queue.js';

export interface AckWaitOptions {
  state: MailboxState;
  outbox: Outbox;
  logger: Logger;
  /** How long to wait for the broker inside the session before leaving the rest to the outbox. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export class AckWait {
  private batches: Array<{ alerts: AlertQueue; uids: string[] }> = [];
  private readonly writes: OrderedWrites;
  constructor(private readonly o: AckWaitOptions) {
    this.writes = new OrderedWrites(o.outbox);
  }

  /**
   * A batch's alerts go to the outbox (then `after`, the state save) once the batches before are written, behind the
   * fetch of the next batches: nothing waits for them until wait(), or until the outbox may be full (hasRoom).
   */
  add(batch: { alerts: AlertQueue; uids: string[] }, after: () => Promise<void>): void {
    this.writes.add(batch.alerts, after);
    this.batches.push(batch);
  }

  /** Room in the outbox for another batch (alerts not written yet count); false too once a write failed (wait() throws). */
  hasRoom(): boolean {
    return !this.writes.failed && this.writes.hasRoom();
  }

  /** Every batch added so far is written; rejects with the first failure. */
  written(): Promise<void> {
    return this.writes.done();
  }

  /** Batches are queued that were not waited for yet. */
  get pending(): boolean {
    return this.batches.length > 0;
  }

  /**
   * The wait DELE needs: when a message of these batches is to be deleted on its acks, wait() now; otherwise 0, and
   * the caller may wait() after the session (QUIT does not wait for the broker when nothing is deleted on its word).
   */
  async waitForDele(): Promise<number> {
    return this.batches.some((b) => b.alerts.deletesAfterAck) ? this.wait() : 0;
  }

  /**
   * Wait for the batches so far to be written (throws when a write failed), then (bounded) for the broker to
   * acknowledge their alerts; returns how many of their messages are left undone (deferred).
   */
  async wait(): Promise<number> {
    const { state, logger } = this.o;
    await this.writes.done();
    const batches = this.batches.splice(0);
    // At once: a broker that does not answer costs one ack timeout, not one per batch.
    const left = await Promise.all(batches.map((b) => b.alerts.waitForAcks(this.o.timeoutMs, this.o.signal)));
    const pending = left.reduce((n, l) => n + l.length, 0);
    if (!pending) return 0;
    let undone = 0;
    for (const b of batches) for (const uid of b.uids) if (!state.isDone(uid)) undone++;
    logger.warn('broker has not acknowledged every alert yet; they stay in the outbox', { pending });
    return undone;
  }
}
