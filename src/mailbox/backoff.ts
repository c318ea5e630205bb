// When a mailbox may be polled again after a failure: capped exponential backoff with jitter, and a hard cap on failed logins per hour.
import { Pop3Error } from '../pop3/index.js';
import { exponentialDelay } from '../backoff.js';

export interface BackoffPolicy {
  minMs: number;
  maxMs: number;
  maxAuthAttemptsPerHour: number;
}

const HOUR = 3_600_000;

export class PollBackoff {
  private failures = 0;
  private notBefore = 0;
  private lastWasAuth = false;
  /** Times of failed logins in the last hour (persisted by the caller so a restart loop cannot bypass the cap). */
  authFailures: number[];

  constructor(private policy: BackoffPolicy, authFailures: readonly number[] = [], private random: () => number = Math.random) {
    this.authFailures = authFailures.filter((t) => Date.now() - t < HOUR);
    this.notBefore = this.authNotBefore(Date.now());
    this.lastWasAuth = this.notBefore > 0;
  }

  setPolicy(p: BackoffPolicy): void {
    this.policy = p;
  }

  /** Milliseconds until the next attempt is allowed (0 = now). */
  waitMs(now = Date.now()): number {
    return Math.max(0, this.notBefore - now);
  }

  /** True while the last failure was a failed login and its hard backoff has not run out. */
  authBlocked(now = Date.now()): boolean {
    return this.lastWasAuth && this.notBefore > now;
  }

  succeeded(): void {
    this.lastWasAuth = false;
    this.failures = 0;
    this.notBefore = 0;
  }

  /** Records a failed poll and returns the delay before the next attempt. */
  failed(err: unknown, now = Date.now(), loginDelaySec?: number): number {
    this.failures++;
    let delay: number;
    const code = err instanceof Pop3Error ? err.code : undefined;
    // Only a rejected login counts toward the per-hour cap: a TLS failure or an oversized reply (also "backoff-hard")
    // is often a network glitch, and pausing polls for HOUR/cap after one would delay alerts for no reason.
    this.lastWasAuth = isLoginFailure(err);
    if (this.lastWasAuth) {
      this.authFailures = [...this.authFailures.filter((t) => now - t < HOUR), now];
      // Spread the allowed attempts over the hour, and never exceed the cap inside any hour.
      delay = Math.max(HOUR / this.policy.maxAuthAttemptsPerHour, this.authNotBefore(now) - now);
    } else if (code === 'ELOGIN_DELAY') {
      delay = Math.max((loginDelaySec ?? 300) * 1000, this.policy.minMs);
    } else {
      const base = exponentialDelay(this.failures - 1, this.policy.minMs, this.policy.maxMs);
      delay = Math.round(base * (0.5 + this.random()));
      delay = Math.min(this.policy.maxMs, Math.max(this.policy.minMs / 2, delay));
    }
    this.notBefore = now + delay;
    return delay;
  }

  private authNotBefore(now: number): number {
    const recent = this.authFailures.filter((t) => now - t < HOUR).sort((a, b) => a - b);
    if (recent.length < this.policy.maxAuthAttemptsPerHour) return 0;
    // The oldest failure in the window must leave it before another attempt.
    return recent[recent.length - this.policy.maxAuthAttemptsPerHour]! + HOUR;
  }
}

/** A login the server rejected: counted toward the per-hour cap of failed logins and persisted across restarts. */
export function isLoginFailure(err: unknown): boolean {
  return err instanceof Pop3Error && err.code === 'EAUTH';
}
