// Queues the alerts of a decided message: the command replay gate, rate limits, the delete policy, the publications (with the extras hook) and their outbox items, then the bounded wait for acks.
import type { Logger } from '../log.js';
import type { Evaluation, MessageData, RuleMatch } from '../rules/index.js';
import type { RateLimiter } from '../rules/rate-limit.js';
import type { MailboxState } from '../state/mailbox-state.js';
import { buildPublications, type Publication } from './build.js';
import { admitCommands } from './command-guard.js';
import type { Outbox, OutboxItem } from './outbox.js';

/** Extra publications per match (Home Assistant event and image topics), queued with the rule's own. */
export type ExtraPublications = (match: RuleMatch, data: MessageData, pubs: Publication[]) => Publication[];

export interface AlertQueueDeps {
  mailbox: string;
  /** The mailbox's `keep`: the policy of a matched rule without `then`. */
  keep: boolean;
  baseTopic: string;
  state: MailboxState;
  outbox: Outbox;
  rateLimiter: RateLimiter;
  logger: Logger;
  extraPublications?: ExtraPublications | undefined;
}

/**
 * The alerts of one batch of messages. Publications go to the outbox on disk before anything is published; their
 * acknowledgements are awaited (bounded) at the end of the batch by `waitForAcks`.
 */
export class AlertQueue {
  private readonly waitKeys: string[] = [];
  private readonly together: OutboxItem[] = [];
  private deleting = false;

  constructor(private readonly d: AlertQueueDeps) {}

  /**
   * Queue the alerts of a message whose evaluation is decided; returns how many alerts (matched rules) it queued.
   * `now`: written to the outbox at once (after a RETR, so the body can go); otherwise kept for one `enqueueTogether`.
   * A message with nothing to send is marked done here (deleted when its policy says so and no alert was held back).
   */
  async add(data: MessageData, ev: Evaluation, when: 'now' | 'together'): Promise<number> {
    const { state, logger } = this.d;
    if (!ev.matched.length && !ev.refused.length) {
      // No rule matched (most mail): nothing to admit, publish or delete.
      state.markDone(data.uid, { deleteOnServer: false });
      return 0;
    }
    const now = new Date();
    const { matched, refused } = await admitCommands(ev, data, state, now, logger); // command mails: replay gate
    const toQueue: OutboxItem[] = [];
    const keys: string[] = [];
    let deleteAfter = matched.length > 0 && !refused;
    let rateLimited = false;
    const acked = state.ackedAlerts(data.uid);
    for (const m of matched) {
      const rule = m.rule;
      const then = rule.then ?? (this.d.keep ? 'keep' : 'delete');
      if (then !== 'delete') deleteAfter = false;
      const gate = this.d.rateLimiter.take(rule, now);
      if (!gate.allowed) {
        rateLimited = true;
        logger.info('rate limit: alert suppressed', { rule: rule.name, uid: data.uid });
        continue;
      }
      const pubs = buildPublications(m, data, { baseTopic: this.d.baseTopic, suppressed: gate.suppressed || undefined, now });
      if (this.d.extraPublications) pubs.push(...this.d.extraPublications(m, data, pubs));
      pubs.forEach((p, idx) => {
        const key = `${p.alertId}#${idx}`;
        keys.push(key);
        if (acked.has(key)) return;
        toQueue.push({
          key, mailbox: this.d.mailbox, uid: data.uid, messageKeys: [], deleteAfter: false,
          topic: p.topic, qos: p.qos, retain: p.retain, userProperties: p.properties?.userProperties, payload: p.payload,
        });
      });
    }
    if (!keys.length) {
      // No rule matched, or the matched rules publish nothing (a `then: delete` clean-up rule), or every alert was
      // rate-limited. Only the clean-up case may delete: nothing is deleted in place of an alert that was not sent.
      state.markDone(data.uid, { deleteOnServer: deleteAfter && !rateLimited });
      return 0;
    }
    for (const q of toQueue) {
      q.messageKeys = keys;
      q.deleteAfter = deleteAfter;
    }
    if (!toQueue.length) {
      state.markDone(data.uid, { deleteOnServer: deleteAfter });
      return 0;
    }
    this.deleting ||= deleteAfter;
    if (when === 'together') this.together.push(...toQueue);
    else await this.d.outbox.enqueue(toQueue);
    this.waitKeys.push(...toQueue.map((q) => q.key));
    return matched.length;
  }

  /**
   * The alerts kept for later go to the outbox together: their files are written at once and the broker gets them in
   * one window, so their acknowledgements cost one or two state writes, not one each. Nothing is published before its
   * file is on disk; a crash before this leaves these messages not done, so the next poll alerts them again.
   */
  async enqueueTogether(): Promise<void> {
    await this.d.outbox.enqueue(this.together.splice(0));
  }

  /** The alerts kept for enqueueTogether: how many, and their payload bytes. */
  get togetherSize(): { messages: number; bytes: number } {
    return { messages: this.together.length, bytes: this.together.reduce((n, q) => n + q.payload.length, 0) };
  }

  /** Whether a message of this batch is to be deleted once the broker acknowledged its alerts. */
  get deletesAfterAck(): boolean {
    return this.deleting;
  }

  /** Wait (bounded) for the broker to acknowledge what this batch queued; returns the keys still unacknowledged. */
  async waitForAcks(timeoutMs: number, signal?: AbortSignal): Promise<string[]> {
    if (!this.waitKeys.length) return [];
    return this.d.outbox.waitFor(this.waitKeys, timeoutMs, signal);
  }
}
