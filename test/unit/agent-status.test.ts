// The mailbox runner's own status mapped to the MQTT status payload at the agent: every field, optional ones only when set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mailboxStatusPayload } from '../../src/agent.js';
import type { RunnerStatus } from '../../src/mailbox/runner.js';

const base: RunnerStatus = {
  lastPoll: '2024-05-01T10:00:00.000Z', result: 'ok', messages: 3, newMessages: 1, alerts: 2, alertsToday: 4,
  bytesLastPoll: 120, bytesTotal: 4000, nextPoll: '2024-05-01T10:05:00.000Z', connectionProblem: false,
};

test('a runner status becomes the MQTT payload field by field', () => {
  const full: RunnerStatus = { ...base, result: 'ETIMEOUT', error: 'no answer', connectionProblem: true, outbox: { size: 5, dropped: 1 }, limitsExceeded: 2, failedLastPoll: 1 };
  assert.deepEqual(mailboxStatusPayload(full), {
    last_poll: '2024-05-01T10:00:00.000Z', result: 'ETIMEOUT', error: 'no answer', messages: 3, new: 1, alerts: 2, alerts_today: 4,
    bytes_last_poll: 120, bytes_total: 4000, next_poll: '2024-05-01T10:05:00.000Z', connection_problem: true,
    outbox: { size: 5, dropped: 1 }, limits_exceeded: 2, failed_last_poll: 1,
  });
});

test('optional fields are left out until the runner sets them', () => {
  const p = mailboxStatusPayload({ ...base, lastPoll: null, nextPoll: null, result: 'pending' });
  assert.deepEqual(Object.keys(p).sort(), ['alerts', 'alerts_today', 'bytes_last_poll', 'bytes_total', 'connection_problem', 'last_poll', 'messages', 'new', 'next_poll', 'result']);
  assert.equal(p.last_poll, null);
  assert.equal(p.next_poll, null);
  assert.equal(JSON.stringify(mailboxStatusPayload({ ...base, limitsExceeded: 0, failedLastPoll: 0 })).includes('"limits_exceeded":0'), true, 'zero is a value, not absent');
});
