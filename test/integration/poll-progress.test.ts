// A long first poll (existing: process) logs its progress as previewed/total while it works, against real Dovecot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot } from '../support/dovecot.js';
import { makeMail } from '../support/maildir.js';
import { pollMailbox } from '../../src/mailbox/poll.js';
import { MailboxState } from '../../src/state/mailbox-state.js';
import { Outbox } from '../../src/alerts/outbox.js';
import { compileRules, createRateLimiter } from '../../src/rules/index.js';
import { createLogger } from '../../src/log.js';

test('a first poll of many messages logs previewed/total progress in order, and ends with every message done', { timeout: 120_000 }, async () => {
  const dovecot = await startDovecot({ users: [{ user: 'bob', pass: 'bob-Secret-pw-1' }] });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-progress-'));
  try {
    const N = 300;
    await dovecot.deliverMany('bob', Array.from({ length: N }, (_, i) => makeMail({ from: `n${i}@shop.example`, subject: `Newsletter ${i}`, body: 'x' })));
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (l) => lines.push(l), timestamps: false });
    const { state } = await MailboxState.load(dir, 'bob', logger);
    const outbox = await Outbox.open(path.join(dir, 'outbox'), { maxMessages: 100, maxBytes: 1 << 20, whenFull: 'stop_polling' }, logger);
    const ruleSet = compileRules([{ name: 'alarm', when: { subject: { contains: 'ALARM' } } } as never], { trustedAuthservIds: [] });
    const result = await pollMailbox({
      target: {
        id: 'bob', host: '127.0.0.1', port: dovecot.tlsPort, tls: 'implicit', ca: await readFile(dovecot.caFile),
        username: 'bob', password: 'bob-Secret-pw-1', auth: 'auto', allowInsecureAuth: false, keep: true, existing: 'process',
        maxMessageSize: 1 << 20, timeouts: { connectMs: 10_000, greetingMs: 10_000, commandMs: 30_000, sessionMs: 120_000 },
        pipelining: true, fastUidl: true,
      },
      ruleSet, state, firstRun: true, outbox, baseTopic: 'pop2mqtt', rateLimiter: createRateLimiter(), logger,
      ackTimeoutMs: 1000, batchSize: 50, progressEveryMs: 0,
    });
    assert.equal(result.newMessages, N);
    assert.equal(result.alerts, 0);
    const progress = lines.filter((l) => l.includes('progress')).map((l) => /previewed=(\d+)\/(\d+)/.exec(l));
    assert.ok(progress.length >= 5, `progress lines: ${progress.length}`);
    const counts = progress.map((m) => Number(m![1]));
    assert.ok(progress.every((m) => m![2] === String(N)), 'the total is the number of new messages');
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b), 'progress only goes up');
    assert.equal(counts[counts.length - 1], N);
    for (const uid of state.data.serverUids) assert.ok(state.isDone(uid));
  } finally {
    await dovecot.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
