// Tests of poll backoff: exponential with jitter and a cap, and the hard cap on failed logins per hour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PollBackoff } from '../../src/mailbox/backoff.js';
import { Pop3Error } from '../../src/pop3/index.js';

test('connection failures back off exponentially, with jitter, up to the cap', () => {
  const b = new PollBackoff({ minMs: 1000, maxMs: 8000, maxAuthAttemptsPerHour: 3 }, [], () => 0.5);
  const now = 1_000_000;
  const delays = [1, 2, 3, 4, 5, 6].map(() => b.failed(new Error('ECONNREFUSED'), now));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000, 8000]);
  b.succeeded();
  assert.equal(b.waitMs(now), 0);
  const lo = new PollBackoff({ minMs: 1000, maxMs: 60000, maxAuthAttemptsPerHour: 3 }, [], () => 0);
  const hi = new PollBackoff({ minMs: 1000, maxMs: 60000, maxAuthAttemptsPerHour: 3 }, [], () => 0.999);
  lo.failed(new Error('x'), now); hi.failed(new Error('x'), now);
  assert.ok(lo.failed(new Error('x'), now) < hi.failed(new Error('x'), now), 'jitter spreads delays');
});

test('auth failures allow at most N attempts per hour, also across a restart', () => {
  const policy = { minMs: 1000, maxMs: 60000, maxAuthAttemptsPerHour: 3 };
  const b = new PollBackoff(policy);
  const t0 = Date.now();
  const authErr = new Pop3Error('EAUTH', 'authentication failed');
  let t = t0;
  const attempts: number[] = [];
  // Simulate a day of attempts: try whenever the backoff allows.
  while (t < t0 + 3 * 3_600_000) {
    if (b.waitMs(t) === 0) {
      attempts.push(t);
      b.failed(authErr, t);
    }
    t += 60_000;
  }
  for (const a of attempts) {
    const inHour = attempts.filter((x) => x >= a && x < a + 3_600_000).length;
    assert.ok(inHour <= 3, `at most 3 attempts in any hour, saw ${inHour}`);
  }
  // A new instance built from the persisted failures refuses to try at once.
  const recent = [t0, t0 + 1000, t0 + 2000];
  const restarted = new PollBackoff(policy, recent);
  assert.ok(restarted.waitMs(t0 + 3000) > 3_500_000 - 10_000);
});

test('only a failed login blocks requested polls; a connection failure does not', () => {
  const policy = { minMs: 60_000, maxMs: 600_000, maxAuthAttemptsPerHour: 3 };
  const b = new PollBackoff(policy);
  b.failed(new Error('ECONNREFUSED'));
  assert.ok(b.waitMs() > 0);
  assert.equal(b.authBlocked(), false);
  b.failed(new Pop3Error('EAUTH', 'bad password'));
  assert.equal(b.authBlocked(), true);
  b.succeeded();
  assert.equal(b.authBlocked(), false);
});

test('[LOGIN-DELAY]: wait what the server announced (CAPA LOGIN-DELAY), else 300 s; never less than the minimum', () => {
  const policy = { minMs: 60_000, maxMs: 600_000, maxAuthAttemptsPerHour: 3 };
  const now = 5_000_000;
  const delayed = new Pop3Error('ELOGIN_DELAY', 'login delay', { respCode: 'LOGIN-DELAY', retryAfterSec: 900 });
  assert.equal(new PollBackoff(policy).failed(delayed, now, delayed.retryAfterSec), 900_000);
  assert.equal(new PollBackoff(policy).failed(delayed, now), 300_000, 'no announced delay: 300 s');
  assert.equal(new PollBackoff(policy).failed(delayed, now, 10), 60_000, 'the minimum still applies');
  const b = new PollBackoff(policy);
  b.failed(delayed, now, 900);
  assert.equal(b.authBlocked(), false, 'not a failed login: requested polls are not blocked by the login cap');
});
