// Tests of command mails (action rules): the Date window and Message-ID guards of the engine, and the replay gate at queue time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compileRules, type RuleConfig, type MessageData } from '../../src/rules/index.js';
import { parseHeaders, loadHeaderDecoder } from '../../src/message/headers.js';
import { admitCommands, commandKey } from '../../src/alerts/command-guard.js';
import { MailboxState } from '../../src/state/mailbox-state.js';
import { createLogger } from '../../src/log.js';
import { eml } from '../fixtures/mail/messages.js';

// Header decoding (libmime) is loaded on demand, as the poller does before parsing new mail.
await loadHeaderDecoder();

const NOW = new Date('2026-12-03T12:00:00Z');
const TOKEN = 'Garage-Token-0042';
const RULES = [
  { name: 'garage', action: true, when: { shared_secret: { secret: TOKEN }, from: { address: { is: 'me@example.com' } } }, publish: { topic: 'cmd/garage', payload: 'open' } },
  { name: 'log', when: { subject: { contains: 'garage' } } },
] as RuleConfig[];

function mail(over: Record<string, string | null> = {}): MessageData {
  const h: Record<string, string | null> = {
    From: 'me@example.com', Subject: `open garage ${TOKEN}`, Date: 'Thu, 3 Dec 2026 12:59:00 +0100', 'Message-ID': '<cmd-1@example.com>', ...over,
  };
  const lines = Object.entries(h).filter(([k, v]) => v !== null && k !== 'uid').map(([k, v]) => `${k}: ${v}`);
  return { mailbox: 'home', uid: over.uid ?? 'uid-1', msgNum: 1, size: 100, headers: parseHeaders(eml(lines)) };
}

function captureLogger() {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'debug', write: (l) => lines.push(l), timestamps: false }) };
}

test('an action rule acts only on mail dated within max_age (and not too far ahead), with a Message-ID', { timeout: 5000 }, () => {
  const rs = compileRules(RULES, { trustedAuthservIds: [] });
  const names = (d: MessageData) => rs.evaluate(d, NOW).matched.map((m) => m.rule.name);
  assert.deepEqual(names(mail()), ['garage', 'log'], 'one minute old: acted on');
  const cases: [Record<string, string | null>, RegExp][] = [
    [{ Date: 'Tue, 1 Jul 2025 10:44:55 +0200' }, /is 520 d old, more than max_age 1 h/], // the 17-month-old copy
    [{ Date: 'Thu, 3 Dec 2026 11:58:00 +0100' }, /is 62 min old/],
    [{ Date: 'Thu, 3 Dec 2026 13:10:00 +0100' }, /10 min in the future, more than max_future 5 min/],
    [{ Date: null }, /no Date header/],
    [{ Date: 'yesterday at noon' }, /unparseable Date header "yesterday at noon"/],
    [{ 'Message-ID': null }, /no Message-ID/],
    [{ 'Message-ID': '<>' }, /no Message-ID/],
  ];
  for (const [over, why] of cases) {
    const ev = rs.evaluate(mail(over), NOW);
    assert.deepEqual(ev.matched.map((m) => m.rule.name), ['log'], JSON.stringify(over));
    assert.equal(ev.refused.length, 1);
    assert.match(ev.refused[0]!.reason, why);
    const tr = ev.trace.find((t) => t.rule === 'garage')!;
    assert.equal(tr.result, 'failed');
    assert.match(tr.note ?? '', /conditions hold, but the command is not acted on/);
  }
  // a fresh Date (or another Subject, From, Message-ID) added on top of a signed stale command: DKIM still passes
  // (the verifier reads the bottom instance), so a second instance of such a header means not acted on
  for (const extra of ['Date: Thu, 3 Dec 2026 11:59:30 +0000', `Subject: close garage ${TOKEN}`, 'From: me@example.com', 'Message-ID: <new@example.com>', 'Date: Thu, 3 Dec 2026 11:59:30 +0000']) {
    const raw = eml([extra, 'From: me@example.com', `Subject: open garage ${TOKEN}`, 'Date: Tue, 1 Jul 2025 10:44:55 +0200', 'Message-ID: <cmd-1@example.com>']);
    const ev = rs.evaluate({ mailbox: 'home', uid: 'u', msgNum: 1, size: raw.length, headers: parseHeaders(raw) }, NOW);
    assert.deepEqual(ev.matched.map((m) => m.rule.name), ev.trace.find((t) => t.rule === 'log')!.result === 'matched' ? ['log'] : [], extra);
    assert.match(ev.refused[0]?.reason ?? '', /2 (date|subject|from|message-id) headers/, extra);
  }
  // a non-action rule is never held to the Date window
  assert.deepEqual(rs.evaluate(mail({ Date: null }), NOW).matched.map((m) => m.rule.name), ['log']);
  // max_age and max_future are per rule
  const strict = compileRules([{ ...RULES[0]!, max_age: '30s', max_future: '0s' }] as RuleConfig[], { trustedAuthservIds: [] });
  assert.equal(strict.evaluate(mail(), NOW).refused.length, 1);
  assert.equal(strict.evaluate(mail({ Date: 'Thu, 3 Dec 2026 12:00:00 +0000' }), NOW).matched.length, 1);
  assert.equal(strict.evaluate(mail({ Date: 'Thu, 3 Dec 2026 12:00:01 +0000' }), NOW).refused.length, 1);
});

test('two copies of one command mail (same Message-ID) act once, also after a restart; the refusal is logged and nothing else is held back', { timeout: 10000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-cmd-'));
  try {
    const rs = compileRules(RULES, { trustedAuthservIds: [] });
    const { lines, logger } = captureLogger();
    const st = (await MailboxState.load(dir, 'home', logger)).state;
    const first = mail({ uid: 'uid-1' });
    const a = await admitCommands(rs.evaluate(first, NOW), first, st, NOW, logger);
    assert.deepEqual(a.matched.map((m) => m.rule.name), ['garage', 'log']);
    assert.equal(a.refused, false);
    assert.equal(st.isDirty, false, 'the claim is saved before anything is published');
    // a copy with another UID, in the same poll: only the informative rule is left
    const copy = mail({ uid: 'uid-2', 'Message-ID': ' <CMD-1@example.com> ' });
    const b = await admitCommands(rs.evaluate(copy, NOW), copy, st, NOW, logger);
    assert.deepEqual(b.matched.map((m) => m.rule.name), ['log']);
    assert.equal(b.refused, true);
    assert.ok(lines.some((l) => /command mail not acted on/.test(l) && /replay/.test(l) && /uid-2/.test(l)), lines.join('\n'));
    // after a restart, a third copy still does not act
    const again = (await MailboxState.load(dir, 'home', logger)).state;
    const third = mail({ uid: 'uid-3' });
    assert.deepEqual((await admitCommands(rs.evaluate(third, NOW), third, again, NOW, logger)).matched.map((m) => m.rule.name), ['log']);
    // a new command (new Message-ID) acts
    const next = mail({ uid: 'uid-4', 'Message-ID': '<cmd-2@example.com>' });
    assert.deepEqual((await admitCommands(rs.evaluate(next, NOW), next, again, NOW, logger)).matched.map((m) => m.rule.name), ['garage', 'log']);
    // a stale copy: refused by the engine, logged with its reason by the gate, and marked as refused (no delete)
    const stale = mail({ uid: 'uid-5', 'Message-ID': '<cmd-3@example.com>', Date: 'Tue, 1 Jul 2025 10:44:55 +0200' });
    const s = await admitCommands(rs.evaluate(stale, NOW), stale, again, NOW, logger);
    assert.equal(s.refused, true);
    assert.ok(lines.some((l) => /command mail not acted on/.test(l) && /uid-5/.test(l) && /max_age/.test(l)));
    // the state file holds hashes, not the Message-IDs
    assert.equal(JSON.stringify(again.data).includes('cmd-1@example.com'), false);
    assert.equal(again.data.commands[0]!.key, commandKey('garage', '<cmd-1@example.com>'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
