// Runs one mailbox over time: its schedule, no overlapping polls, backoff after failures, and its status for the bridge.
import type { ScheduledTask } from 'node-cron';
import type { Logger } from '../log.js';
import { Pop3Error, errorCodeOf, type Pop3Memory } from '../pop3/index.js';
import type { RuleSet } from '../rules/index.js';
import type { RateLimiter } from '../rules/rate-limit.js';
import type { Outbox, OutboxEntry } from '../alerts/outbox.js';
import { MailboxState } from '../state/mailbox-state.js';
import { pollMailbox, type PollDeps, type PollResult } from './poll.js';
import type { PollTarget } from './target.js';
import { PollBackoff, isLoginFailure, type BackoffPolicy } from './backoff.js';
import { loginHint } from './login-hints.js';
import { pollOffsetMs, type PollSlots } from './poll-slots.js';
import { trimHeapAfterPoll } from '../heap-trim.js';
import { isoTime } from '../iso-time.js';

/** What a runner reports about its mailbox after each change (the agent publishes it as the MQTT status payload). */
export interface RunnerStatus {
  /** When the last poll started (ISO 8601), null before the first. */
  lastPoll: string | null;
  /** 'pending' before the first poll, 'ok', 'outbox_full', or the error code of the failed poll. */
  result: string;
  error?: string;
  messages: number;
  newMessages: number;
  alerts: number;
  alertsToday: number;
  bytesLastPoll: number;
  bytesTotal: number;
  nextPoll: string | null;
  connectionProblem: boolean;
  outbox?: { size: number; dropped: number };
  /** Messages since start whose MIME broke a parser limit. */
  limitsExceeded?: number;
  /** Messages that could not be handled in the last poll. */
  failedLastPoll?: number;
}


export interface RunnerDeps {
  stateDir: string;
  outbox: Outbox;
  baseTopic: string;
  rateLimiter: RateLimiter;
  logger: Logger;
  onStatus: (id: string, status: RunnerStatus) => void;
  /** Shared by every runner of the agent: at most max_concurrent_polls POP3 sessions at once. */
  slots: PollSlots;
  /** One per agent: what its POP3 sessions remember between polls (TLS sessions, lean-hello refusals, server notes). */
  pop3Memory: Pop3Memory;
  extraPublications?: PollDeps['extraPublications'];
}

/** A poll target plus what the runner needs for OAuth mailboxes. */
export interface RunnerTarget extends PollTarget {
  /** Drop the cached access token after the server refused it (set for OAuth mailboxes). */
  invalidateAccessToken?: () => void;
}

export interface RunnerSettings {
  target: RunnerTarget;
  schedule: string;
  ruleSet: RuleSet;
  backoff: BackoffPolicy;
  ackTimeoutMs: number;
  /** Scheduled polls start pollOffsetMs(spreadPhase, interval, spreadMs) after their tick (poll_spread; 0 = at the tick). */
  spreadMs: number;
  /** This mailbox's place in the spread, in [0, 1) (spreadPhase of its position in the config). */
  spreadPhase: number;
}

/** node-cron, once loadScheduler() has imported it: only a daemon schedules, so `once` never evaluates it (0.5 MiB). */
let cron: typeof import('node-cron').default | undefined;

/** Imports node-cron for schedule(); the agent awaits it before it schedules the first runner. */
export async function loadScheduler(): Promise<void> {
  cron ??= (await import('node-cron')).default;
}

export type PollOutcome = { ok: true; result: PollResult } | { ok: false; error: Error; skipped?: string };

export class MailboxRunner {
  readonly id: string;
  private settings: RunnerSettings;
  private state!: MailboxState;
  private firstRun = false;
  private running: Promise<PollOutcome> | null = null;
  private task: ScheduledTask | null = null;
  private abort = new AbortController();
  /** Aborted by stop(): a poll still waiting for a slot gives up at once. */
  private leaving = new AbortController();
  /** The spread delay between a cron tick and its poll. */
  private delayTimer: NodeJS.Timeout | null = null;
  /** Time between the last tick and the one after it (for next_poll in the status; 0 before the first tick). */
  private lastGapMs = 0;
  private delayedUntil = 0;
  private tlsSession: Buffer | null = null;
  private backoff!: PollBackoff;
  private readonly log: Logger;
  private alertsToday = { day: '', count: 0 };
  status: RunnerStatus;

  constructor(settings: RunnerSettings, private readonly deps: RunnerDeps) {
    this.id = settings.target.id;
    this.settings = settings;
    this.log = deps.logger.child(this.id);
    this.status = {
      lastPoll: null, result: 'pending', messages: 0, newMessages: 0, alerts: 0, alertsToday: 0,
      bytesLastPoll: 0, bytesTotal: 0, nextPoll: null, connectionProblem: false,
    };
  }

  async init(): Promise<void> {
    const { state, outcome } = await MailboxState.load(this.deps.stateDir, this.id, this.log);
    this.state = state;
    this.firstRun = outcome !== 'loaded';
    this.backoff = new PollBackoff(this.settings.backoff, state.data.authFailures);
    this.status.bytesTotal = state.data.bytesTotal;
  }

  /** Swap in new settings after a reload; a changed schedule is rescheduled. */
  update(settings: RunnerSettings): void {
    const reschedule = settings.schedule !== this.settings.schedule && this.task !== null;
    this.settings = settings;
    this.backoff.setPolicy(settings.backoff);
    if (reschedule) {
      this.unschedule();
      this.schedule();
    }
  }

  schedule(): void {
    if (!cron) throw new Error('schedule() before loadScheduler()');
    this.task = cron.createTask(this.settings.schedule, () => {
      const offset = this.offsetMs();
      if (offset === 0) {
        void this.poll('schedule').then(() => trimHeapAfterPoll());
        return;
      }
      if (this.delayTimer) clearTimeout(this.delayTimer);
      this.delayedUntil = Date.now() + offset;
      this.delayTimer = setTimeout(() => {
        this.delayTimer = null;
        void this.poll('schedule').then(() => trimHeapAfterPoll());
      }, offset);
    }, { name: `poll-${this.id}`, noOverlap: true });
    this.task.start();
    this.status.nextPoll = this.nextRun();
  }

  /** This mailbox's fixed delay after a tick, within the gap to the following tick (see pollOffsetMs). */
  private offsetMs(): number {
    const next = this.task?.getNextRun();
    this.lastGapMs = next ? next.getTime() - Date.now() : 0;
    return pollOffsetMs(this.settings.spreadPhase, this.lastGapMs, this.settings.spreadMs);
  }

  private unschedule(): void {
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = null;
    void this.task?.destroy();
    this.task = null;
  }

  nextRun(): string | null {
    const wait = this.backoff?.waitMs() ?? 0;
    const next = this.task?.getNextRun() ?? null;
    if (!next) return null;
    if (this.delayTimer) return isoTime(Math.max(this.delayedUntil, Date.now() + wait));
    const t = Math.max(next.getTime() + pollOffsetMs(this.settings.spreadPhase, this.lastGapMs, this.settings.spreadMs), Date.now() + wait);
    return isoTime(t);
  }

  /** Poll now, or join the poll already running. */
  poll(reason: 'schedule' | 'request' | 'once'): Promise<PollOutcome> {
    if (this.running) return this.running;
    this.running = this.runPoll(reason).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async runPoll(reason: string): Promise<PollOutcome> {
    const wait = this.backoff.waitMs();
    // A requested poll (MQTT, once) may skip a connection backoff, but never the cap on failed logins: whoever can
    // publish to the broker must not be able to get the mail account locked.
    if (wait > 0 && (reason === 'schedule' || this.backoff.authBlocked())) {
      this.log.debug('poll skipped: backing off', { seconds: Math.ceil(wait / 1000) });
      return { ok: false, error: new Error(`backing off for ${Math.ceil(wait / 1000)} s`), skipped: 'backoff' };
    }
    // Entries whose send or ack record failed earlier (e.g. disk full) are retried at every poll, not only when a
    // new alert is queued or the broker reconnects; otherwise they could stay stuck, and a full outbox stop polling.
    this.deps.outbox.kick();
    if (!this.deps.outbox.hasRoom()) {
      const error = new Error(`outbox full (${this.deps.outbox.size} alerts waiting for the broker): polling paused`);
      this.log.warn(error.message);
      this.setStatus({ result: 'outbox_full', error: error.message });
      return { ok: false, error, skipped: 'outbox_full' };
    }
    // One of max_concurrent_polls slots, shared by every mailbox of the agent; the session timeout starts after it.
    let release: () => void;
    try {
      release = await this.deps.slots.acquire(this.leaving.signal);
    } catch (e) {
      return { ok: false, error: e as Error, skipped: 'stopping' };
    }
    try {
      return await this.pollInSlot();
    } finally {
      release();
    }
  }

  private async pollInSlot(): Promise<PollOutcome> {
    const started = new Date();
    try {
      const result = await this.pollWithTokenRetry();
      this.firstRun = false;
      this.backoff.succeeded();
      this.countAlerts(result.alerts);
      this.log.info('poll', {
        messages: result.messages, new: result.newMessages, alerts: result.alerts, deleted: result.deleted || undefined,
        failed: result.failed || undefined, deferred: result.deferred || undefined, limits_exceeded: result.limitsExceeded || undefined, bytes: result.bytesIn, duration_ms: result.durationMs, ack_wait_ms: result.ackWaitMs,
      });
      this.setStatus({
        lastPoll: isoTime(started), result: 'ok', error: undefined, messages: result.messages, newMessages: result.newMessages,
        alerts: result.alerts, bytesLastPoll: result.bytesIn, connectionProblem: false,
        limitsExceeded: (this.status.limitsExceeded ?? 0) + result.limitsExceeded, failedLastPoll: result.failed,
      });
      return { ok: true, result };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      const code = errorCodeOf(err);
      const delay = this.backoff.failed(err, Date.now(), err instanceof Pop3Error ? err.retryAfterSec : undefined);
      if (isLoginFailure(err)) {
        this.state.setAuthFailures(this.backoff.authFailures);
        await this.state.save().catch(() => {});
      }
      const hint = loginHint(this.settings.target.host, err, !this.settings.target.accessToken);
      this.log.error('poll failed', { code, error: err.message, hint, retry_in_s: Math.round(delay / 1000) });
      this.setStatus({ lastPoll: isoTime(started), result: code, error: err.message, newMessages: 0, alerts: 0, bytesLastPoll: 0, connectionProblem: true });
      return { ok: false, error: err };
    }
  }

  private pollOnce(): Promise<PollResult> {
    return pollMailbox({
      target: this.settings.target, ruleSet: this.settings.ruleSet, state: this.state, firstRun: this.firstRun,
      outbox: this.deps.outbox, baseTopic: this.deps.baseTopic, rateLimiter: this.deps.rateLimiter,
      logger: this.log, signal: this.abort.signal, ackTimeoutMs: this.settings.ackTimeoutMs,
      tlsSession: this.tlsSession, onTlsSession: (s) => (this.tlsSession = s), extraPublications: this.deps.extraPublications,
      memory: this.deps.pop3Memory,
    });
  }

  /**
   * OAuth mailboxes: get the token before connecting (a token failure opens no POP3 session), and when the
   * server refuses the login, drop the cached token and retry once with a fresh one before the auth backoff.
   */
  private async pollWithTokenRetry(): Promise<PollResult> {
    const target = this.settings.target;
    try {
      if (target.accessToken) await target.accessToken();
      return await this.pollOnce();
    } catch (e) {
      if (!target.invalidateAccessToken || !(e instanceof Pop3Error) || e.code !== 'EAUTH' || this.abort.signal.aborted) throw e;
      this.log.warn('OAuth login refused: retrying once with a fresh access token', { error: e.message });
      target.invalidateAccessToken();
      return await this.pollOnce();
    }
  }

  private countAlerts(n: number): void {
    const day = isoTime().slice(0, 10);
    if (this.alertsToday.day !== day) this.alertsToday = { day, count: 0 };
    this.alertsToday.count += n;
  }

  private setStatus(patch: Partial<RunnerStatus>): void {
    this.status = {
      ...this.status, ...patch,
      alertsToday: this.alertsToday.count,
      bytesTotal: this.state?.data.bytesTotal ?? 0,
      nextPoll: this.nextRun(),
      outbox: { size: this.deps.outbox.pendingFor(this.id).length, dropped: this.deps.outbox.dropped },
    };
    if (this.status.error === undefined) delete this.status.error;
    this.deps.onStatus(this.id, this.status);
  }

  /** An alert of this mailbox was acknowledged by the broker (possibly long after its poll). */
  async acknowledged(entry: OutboxEntry): Promise<void> {
    const st = this.state;
    // Already done: still wait for the state on disk to say so (acknowledgements of a window run together).
    if (st.isDone(entry.uid)) return st.flush();
    st.recordAck(entry.uid, entry.key);
    const acked = st.ackedAlerts(entry.uid);
    if (entry.messageKeys.every((k) => acked.has(k))) st.markDone(entry.uid, { deleteOnServer: entry.deleteAfter });
    await st.flush();
  }

  /** An alert was dropped from a full outbox (drop_oldest): the message counts as handled but is never deleted. */
  async dropped(entry: OutboxEntry): Promise<void> {
    if (!this.state.isDone(entry.uid)) this.state.markDone(entry.uid);
    await this.state.flush();
  }

  /** Stop scheduling; abort a running session without QUIT (so nothing is deleted); wait for it, bounded. */
  async stop(graceMs = 5000): Promise<void> {
    this.unschedule();
    this.leaving.abort();
    const running = this.running;
    if (running) {
      const timer = setTimeout(() => this.abort.abort(), graceMs);
      await running.catch(() => {});
      clearTimeout(timer);
    }
    await this.state?.flush().catch(() => {});
  }
}
