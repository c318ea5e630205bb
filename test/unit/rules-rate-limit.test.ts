// Tests of the rate-limit syntax and the fixed-window limiter of rules/rate-limit.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRateLimit, createRateLimiter } from '../../src/rules/rate-limit.js';

test('parseRateLimit understands named and duration windows', { timeout: 5000 }, () => {
  assert.deepEqual(parseRateLimit('5/min'), { count: 5, windowMs: 60_000, text: '5/min' });
  assert.equal(parseRateLimit('10/hour').windowMs, 3_600_000);
  assert.equal(parseRateLimit('1/day').windowMs, 86_400_000);
  assert.equal(parseRateLimit('3/10m').windowMs, 600_000);
  assert.equal(parseRateLimit('2 / 30s').count, 2);
  for (const bad of ['5', '0/min', '5/fortnight', 'x/min', '5/100ms']) assert.throws(() => parseRateLimit(bad), /rate_limit/, bad);
});

test('rate limiter: fixed window, counts suppressed and reports them with the next allowed alert', { timeout: 5000 }, () => {
  const rl = createRateLimiter();
  const rule = { name: 'r', rateLimit: parseRateLimit('2/min') };
  const t0 = new Date('2025-01-01T00:00:00Z');
  const at = (s: number) => new Date(t0.getTime() + s * 1000);
  assert.deepEqual(rl.take(rule, at(0)), { allowed: true, suppressed: 0 });
  assert.deepEqual(rl.take(rule, at(1)), { allowed: true, suppressed: 0 });
  assert.deepEqual(rl.take(rule, at(2)), { allowed: false, suppressed: 0 });
  assert.deepEqual(rl.take(rule, at(3)), { allowed: false, suppressed: 0 });
  assert.equal(rl.pendingSuppressed('r'), 2);
  assert.deepEqual(rl.take(rule, at(61)), { allowed: true, suppressed: 2 });
  assert.equal(rl.pendingSuppressed('r'), 0);
  // other rules are independent; rules without a limit are always allowed
  assert.deepEqual(rl.take({ name: 'other', rateLimit: parseRateLimit('1/min') }, at(2)), { allowed: true, suppressed: 0 });
  for (let i = 0; i < 100; i++) assert.equal(rl.take({ name: 'free' }, at(2)).allowed, true);
});

test('rate limiter refund gives the slot back and keeps the suppressed count', { timeout: 5000 }, () => {
  const rl = createRateLimiter();
  const rule = { name: 'r', rateLimit: parseRateLimit('1/min') };
  const t = new Date('2025-01-01T00:00:00Z');
  rl.take(rule, t);
  assert.equal(rl.take(rule, t).allowed, false);
  const again = rl.take(rule, new Date(t.getTime() + 60_000));
  assert.deepEqual(again, { allowed: true, suppressed: 1 });
  rl.refund('r', again.suppressed);
  assert.deepEqual(rl.take(rule, new Date(t.getTime() + 61_000)), { allowed: true, suppressed: 1 });
});
