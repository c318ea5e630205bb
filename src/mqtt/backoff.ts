// Capped exponential reconnect backoff with jitter, so a fleet of gateways does not hammer a restarted broker in step.

export interface BackoffBounds { min: number; max: number }

/**
 * Delay before reconnect attempt number `attempt` (0-based): min * 2^attempt capped at max,
 * then "equal jitter": uniformly within [delay/2, delay], never below min.
 */
export function reconnectDelay(attempt: number, bounds: BackoffBounds, random: () => number = Math.random): number {
  const min = Math.max(1, bounds.min);
  const max = Math.max(min, bounds.max);
  const exp = Math.min(max, min * Math.pow(2, Math.min(attempt, 30)));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(Math.min(max, Math.max(min, jittered)));
}
