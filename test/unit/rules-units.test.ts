// Tests of the shared duration/size parsers and the rate-limit syntax.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSize, UnitParseError } from '../../src/units.js';
import { parseRateLimit, createRateLimiter } from '../../src/rules/rate-limit.js';

test('parseDuration accepts units, compounds, decimals and plain milliseconds', { timeout: 5000 }, () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('1w'), 604_800_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1h 30m'), 5_400_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('10min'), 600_000);
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration('2H'), 7_200_000);
});

test('parseDuration rejects garbage with a readable error', { timeout: 5000 }, () => {
  for (const bad of ['', 'abc', '5x', '-1s', '1h-', 'h', '5 m s', NaN, -5, Infinity]) {
    assert.throws(() => parseDuration(bad as string | number), UnitParseError, String(bad));
  }
});

test('parseSize is 1024-based for K/M/G with or without B/iB', { timeout: 5000 }, () => {
  assert.equal(parseSize(512), 512);
  assert.equal(parseSize('512'), 512);
  assert.equal(parseSize('512B'), 512);
  assert.equal(parseSize('1KB'), 1024);
  assert.equal(parseSize('1KiB'), 1024);
  assert.equal(parseSize('1k'), 1024);
  assert.equal(parseSize('25MB'), 25 * 1024 * 1024);
  assert.equal(parseSize('1GiB'), 1024 ** 3);
  assert.equal(parseSize('1.5KB'), 1536);
  assert.equal(parseSize(' 2 MB '), 2 * 1024 * 1024);
});

test('parseSize rejects garbage', { timeout: 5000 }, () => {
  for (const bad of ['', 'MB', '5TB', '5 M B', '-1KB', 'ten', -1, NaN]) {
    assert.throws(() => parseSize(bad as string | number), UnitParseError, String(bad));
  }
});

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
