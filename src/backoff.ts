// Capped exponential backoff: the one formula behind the waits after a failed poll, an MQTT reconnect and an OAuth refresh.

/** `min * 2^attempt` capped at `max` (attempt 0-based; the exponent stops at 30 so a long outage stays finite). */
export function exponentialDelay(attempt: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempt)));
}

export interface BackoffBounds { min: number; max: number }

/**
 * Delay before reconnect attempt number `attempt` (0-based): min * 2^attempt capped at max,
 * then "equal jitter": uniformly within [delay/2, delay], never below min.
 */
export function reconnectDelay(attempt: number, bounds: BackoffBounds, random: () => number = Math.random): number {
  const min = Math.max(1, bounds.min);
  const max = Math.max(min, bounds.max);
  const exp = exponentialDelay(attempt, min, max);
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(Math.min(max, Math.max(min, jittered)));
}
