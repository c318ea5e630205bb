// In-memory per-rule rate limiting of alerts (fixed window), counting what it suppressed so the next alert can report it.
import { parseDuration } from '../units.js';

export interface RateLimitSpec { count: number; windowMs: number; text: string }

const NAMED_WINDOWS: Record<string, string> = {
  s: '1s', sec: '1s', second: '1s',
  m: '1m', min: '1m', minute: '1m',
  h: '1h', hour: '1h',
  d: '1d', day: '1d',
};

/** Parse "5/min", "10/hour", "1/30s" or "3/10m" into a count per window; throws Error with a readable message. */
export function parseRateLimit(text: string): RateLimitSpec {
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
  if (!m) throw new Error(`invalid rate_limit "${text}": expected COUNT/WINDOW such as 5/min, 10/hour or 3/10m`);
  const count = Number(m[1]);
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`invalid rate_limit "${text}": count must be at least 1`);
  const w = m[2]!.toLowerCase();
  let windowMs: number;
  try {
    windowMs = parseDuration(NAMED_WINDOWS[w] ?? w);
  } catch {
    throw new Error(`invalid rate_limit "${text}": window must be s, min, hour, day or a duration like 10m`);
  }
  if (windowMs < 1000) throw new Error(`invalid rate_limit "${text}": window must be at least 1s`);
  return { count, windowMs, text };
}

export interface RateDecision {
  /** True when the alert may be published. */
  allowed: boolean;
  /** When allowed: how many alerts of this rule were suppressed since the last allowed one (report as `suppressed`). */
  suppressed: number;
}

/** What the limiter needs from a rule: its name and its rate_limit (a CompiledRule fits). */
export interface RateLimitedRule { name: string; rateLimit?: RateLimitSpec }

export interface RateLimiter {
  /**
   * Ask whether one more alert of `rule` may go out at `now`; a denied call counts as suppressed.
   * A rule without rateLimit is always allowed (suppressed 0).
   */
  take(rule: RateLimitedRule, now?: Date): RateDecision;
  /** Suppressed alerts not yet reported, per rule. */
  pendingSuppressed(rule: string): number;
  /**
   * Undo the last allowed take() of `rule` (the publish failed and will be retried), restoring its suppressed count,
   * so a retry is not itself rate limited and the count is not lost.
   */
  refund(rule: string, suppressed: number): void;
}

interface Window { start: number; used: number; suppressed: number }

/** Fixed-window limiter: at most `count` alerts per rule per window; the rest are counted and reported later. */
export function createRateLimiter(): RateLimiter {
  const windows = new Map<string, Window>();
  return {
    take(r, now = new Date()) {
      const spec = r.rateLimit;
      if (!spec) return { allowed: true, suppressed: 0 };
      const rule = r.name;
      const t = now.getTime();
      let w = windows.get(rule);
      if (!w || t - w.start >= spec.windowMs || t < w.start) {
        w = { start: t, used: 0, suppressed: w?.suppressed ?? 0 };
        windows.set(rule, w);
      }
      if (w.used < spec.count) {
        w.used++;
        const suppressed = w.suppressed;
        w.suppressed = 0;
        return { allowed: true, suppressed };
      }
      w.suppressed++;
      return { allowed: false, suppressed: 0 };
    },
    pendingSuppressed(rule) {
      return windows.get(rule)?.suppressed ?? 0;
    },
    refund(rule, suppressed) {
      const w = windows.get(rule);
      if (!w) return;
      if (w.used > 0) w.used--;
      w.suppressed += suppressed;
    },
  };
}
