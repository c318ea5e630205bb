// The session's time limits in one object: defaults, validation, what is left of the session, and connect phases cut short by the session's end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionDeadline } from '../../src/pop3/deadline.js';
import { DEFAULT_TIMEOUTS } from '../../src/pop3/limits.js';
import { Pop3Error } from '../../src/pop3/errors.js';

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('defaults come from DEFAULT_TIMEOUTS; given budgets are kept', () => {
  const d = new SessionDeadline();
  assert.deepEqual([d.connectMs, d.greetingMs, d.commandMs, d.sessionMs],
    [DEFAULT_TIMEOUTS.connectMs, DEFAULT_TIMEOUTS.greetingMs, DEFAULT_TIMEOUTS.commandMs, DEFAULT_TIMEOUTS.sessionMs]);
  const e = new SessionDeadline({ connectMs: 1, greetingMs: 2, commandMs: 3, sessionMs: 4 });
  assert.deepEqual([e.connectMs, e.greetingMs, e.commandMs, e.sessionMs], [1, 2, 3, 4]);
});

test('a budget that is not a positive number is EINVALID, naming the option', () => {
  for (const [key, v] of [['connectMs', 0], ['greetingMs', -1], ['commandMs', Number.NaN], ['sessionMs', Number.POSITIVE_INFINITY]] as const) {
    assert.throws(() => new SessionDeadline({ [key]: v }), (e: unknown) => e instanceof Pop3Error && e.code === 'EINVALID' && e.message.includes(`timeouts.${key}`), `${key} = ${v}`);
  }
});

test('the session clock starts at construction; what is left shrinks and never goes below 0', () => {
  const c = manualClock();
  const d = new SessionDeadline({ sessionMs: 10_000 }, c.now);
  assert.equal(d.endsAt, c.now() + 10_000);
  assert.equal(d.sessionLeft(), 10_000);
  c.advance(4_000);
  assert.equal(d.sessionLeft(), 6_000);
  c.advance(60_000);
  assert.equal(d.sessionLeft(), 0);
});

test('a connect phase gets connectMs from when it starts, counts down, and is expired at its end', () => {
  const c = manualClock();
  const d = new SessionDeadline({ connectMs: 3_000, sessionMs: 60_000 }, c.now);
  c.advance(10_000);
  const p = d.connectPhase();
  assert.equal(p.limitMs, 3_000, 'a phase starting later still gets its whole budget');
  assert.equal(p.remaining(), 3_000);
  c.advance(1_000);
  assert.equal(p.remaining(), 2_000, 'a retry in the same phase (the full hello after a refused lean one) gets what is left');
  assert.equal(p.expired, false);
  assert.match(p.timeoutError('STLS handshake').message, /^STLS handshake did not complete within 3000 ms$/);
  c.advance(2_000);
  assert.equal(p.remaining(), 0);
  assert.equal(p.expired, true);
  c.advance(5_000);
  assert.equal(p.remaining(), 0, 'never negative');
});

test('a connect phase never outlives the session: cut short near its end, empty after it', () => {
  const c = manualClock();
  const d = new SessionDeadline({ connectMs: 15_000, sessionMs: 5_000 }, c.now);
  assert.equal(d.connectPhase().limitMs, 5_000, 'the first connect is bounded by the session');
  c.advance(4_000);
  const stls = d.connectPhase();
  assert.equal(stls.limitMs, 1_000, 'an STLS handshake late in the session gets only what is left of it');
  const err = stls.timeoutError('STLS handshake');
  assert.equal(err.code, 'ETIMEOUT');
  assert.equal(err.message, d.timeoutError().message, 'running out there is the session deadline, whichever timer fires first');
  c.advance(2_000);
  const late = d.connectPhase();
  assert.equal(late.limitMs, 0);
  assert.equal(late.expired, true);
});
