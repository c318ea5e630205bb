// A poll's batches written to the outbox one after another, in batch order, behind the fetch of the next batches: the TOP sweep never stops for a batch's files and fsyncs unless the outbox may be full.
import type { Outbox } from './outbox.js';
import type { AlertQueue } from './queue.js';

export class OrderedWrites {
  private chain: Promise<void> = Promise.resolve();
  /** Alerts of batches added but whose outbox write has not started yet (the outbox counts them from then on). */
  private queued = { messages: 0, bytes: 0 };
  /** A write failed: done() rejects, and nothing added later is written. */
  failed = false;

  constructor(private readonly outbox: Pick<Outbox, 'hasRoom'>) {}

  /**
   * Write this batch's alerts once every batch added before is written, then run `after` (the state save). A
   * failure stops the writes of every later batch and is thrown by done().
   */
  add(alerts: Pick<AlertQueue, 'togetherSize' | 'enqueueTogether'>, after: () => Promise<void>): void {
    const size = alerts.togetherSize;
    this.queued.messages += size.messages;
    this.queued.bytes += size.bytes;
    this.chain = this.chain.then(() => {
      this.queued.messages -= size.messages;
      this.queued.bytes -= size.bytes;
      return alerts.enqueueTogether();
    }).then(after);
    this.chain.catch(() => (this.failed = true)); // thrown by done(); meanwhile not an unhandled rejection
  }

  /** Room in the outbox for another batch, counting the alerts still queued here. */
  hasRoom(): boolean {
    return this.outbox.hasRoom(this.queued);
  }

  /** Every batch added so far is written (and its `after` done); rejects with the first failure. */
  done(): Promise<void> {
    return this.chain;
  }
}
