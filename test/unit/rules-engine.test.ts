// Tests of rule evaluation: every condition field, nesting, Kleene staging (what is fetched next), oversize, stop, traces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules, type MessageData, type RuleConfig } from '../../src/rules/index.js';
import { basicHeaders, dataAt, eml } from '../fixtures/mail/messages.js';

const opts = { trustedAuthservIds: [] as string[] };
const NOW = new Date('2025-07-01T09:00:00Z'); // Date header in basicHeaders is 08:52:37Z

function rules(...r: unknown[]) {
  return compileRules(r as RuleConfig[], opts);
}
async function matches(when: unknown, raw: Buffer, stage: 'headers' | 'preview' | 'full' = 'full'): Promise<boolean> {
  const rs = rules({ name: 'r', when, publish: [] });
  const ev = rs.evaluate(await dataAt(raw, stage), NOW);
  assert.equal(ev.decided, true, `undecided at ${stage}: ${JSON.stringify(ev.pending)}`);
  return ev.matched.length === 1;
}

const MAIL = eml(
  basicHeaders({ Cc: '"Ops Team" <ops@Example.com>, other@else.org', 'Reply-To': 'reply@nvr.local', Sender: 'relay@mx.example.net', 'X-Priority': '1', 'X-Camera-Id': 'cam-3', 'X-Multi': 'first' }).concat(['X-Multi: second']),
  'Motion detected in Zone 3\r\nsecond line\r\nthird line\r\n',
);

test('address fields: full form by default, parts by address/localpart/domain/name', { timeout: 5000 }, async () => {
  assert.equal(await matches({ from: { contains: '@nvr.local' } }, MAIL), true);
  assert.equal(await matches({ from: { is: 'NVR <nvr@nvr.local>' } }, MAIL), true);
  assert.equal(await matches({ from: { address: { is: 'nvr@nvr.local' } } }, MAIL), true);
  assert.equal(await matches({ from: { localpart: { is: 'nvr' }, domain: { is: 'NVR.LOCAL' } } }, MAIL), true);
  assert.equal(await matches({ from: { name: { is: 'nvr' } } }, MAIL), true);
  assert.equal(await matches({ from: { name: { is: 'nvr', case_sensitive: true } } }, MAIL), false);
  assert.equal(await matches({ from: { domain: { is: 'example.com' } } }, MAIL), false);
  assert.equal(await matches({ to: { domain: { is: 'example.com' } } }, MAIL), true);
  // some address must satisfy every part at once
  assert.equal(await matches({ cc: { name: { is: 'ops team' }, domain: { is: 'example.com' } } }, MAIL), true);
  assert.equal(await matches({ cc: { name: { is: 'ops team' }, domain: { is: 'else.org' } } }, MAIL), false);
  assert.equal(await matches({ cc: { address: { is: 'other@else.org' } } }, MAIL), true);
  assert.equal(await matches({ reply_to: { domain: { is: 'nvr.local' } } }, MAIL), true);
  assert.equal(await matches({ sender: { glob: '*@mx.example.net' } }, MAIL), true);
  assert.equal(await matches({ reply_to: { contains: 'x' } }, eml(basicHeaders())), false); // absent header
});

test('subject, header (instances, list), message_id, exists, not_exists', { timeout: 5000 }, async () => {
  assert.equal(await matches({ subject: { glob: 'ALARM:*' } }, MAIL), true);
  assert.equal(await matches({ subject: { is: '' } }, eml(basicHeaders({ Subject: '' }))), false); // no Subject: false
  assert.equal(await matches({ header: { name: 'x-priority', is: '1' } }, MAIL), true);
  assert.equal(await matches({ header: { name: 'X-Multi', is: 'second' } }, MAIL), true);
  assert.equal(await matches({ header: [{ name: 'X-Multi', is: 'first' }, { name: 'X-Priority', is: '2' }] }, MAIL), false);
  assert.equal(await matches({ header: [{ name: 'X-Multi', is: 'first' }, { name: 'X-Priority', is: '1' }] }, MAIL), true);
  assert.equal(await matches({ header: { name: 'X-Missing', contains: '' } }, MAIL), false);
  assert.equal(await matches({ message_id: { glob: '*@nvr.local>' } }, MAIL), true);
  assert.equal(await matches({ exists: 'X-Camera-Id' }, MAIL), true);
  assert.equal(await matches({ exists: ['X-Camera-Id', 'X-Nope'] }, MAIL), false);
  assert.equal(await matches({ not_exists: 'X-Spam-Flag' }, MAIL), true);
  assert.equal(await matches({ not_exists: ['X-Spam-Flag', 'x-camera-id'] }, MAIL), false);
});

test('date: newer_than / older_than against now; missing or bad Date is false', { timeout: 5000 }, async () => {
  assert.equal(await matches({ date: { newer_than: '1h' } }, MAIL), true);
  assert.equal(await matches({ date: { newer_than: '5m' } }, MAIL), false);
  assert.equal(await matches({ date: { older_than: '5m' } }, MAIL), true);
  assert.equal(await matches({ date: { older_than: '1h' } }, MAIL), false);
  assert.equal(await matches({ date: { older_than: '1m', newer_than: '1h' } }, MAIL), true);
  assert.equal(await matches({ date: { newer_than: '100d' } }, eml(basicHeaders({ Date: 'garbage' }))), false);
  assert.equal(await matches({ date: { older_than: '1s' } }, eml(basicHeaders({ Date: '' }))), false);
  assert.equal(await matches({ not: { date: { newer_than: '100d' } } }, eml(basicHeaders({ Date: '' }))), true);
});

test('size over/under are strict and need no fetch', { timeout: 5000 }, async () => {
  const rs = rules({ name: 'big', when: { size: { over: 100, under: '1KB' } }, publish: [] });
  const ev = rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 500 }, NOW);
  assert.deepEqual([ev.decided, ev.matched.length, ev.pending.length], [true, 1, 0]);
  assert.equal(rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 100 }, NOW).matched.length, 0);
  assert.equal(rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 1024 }, NOW).matched.length, 0);
  assert.equal(rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 1023 }, NOW).matched.length, 1);
  assert.equal(rs.rules[0]!.needs, 'size');
});

test('preview, body and attachment conditions', { timeout: 5000 }, async () => {
  assert.equal(await matches({ preview: { lines: 1, contains: 'zone 3' } }, MAIL, 'preview'), true);
  assert.equal(await matches({ preview: { lines: 1, contains: 'second line' } }, MAIL, 'preview'), false);
  assert.equal(await matches({ preview: { lines: 2, contains: 'second line' } }, MAIL, 'preview'), true);
  assert.equal(await matches({ body: { regex: 'zone \\d' } }, MAIL), true);
  assert.equal(await matches({ body: { contains: 'fire' } }, MAIL), false);
  const withJpeg = Buffer.from([
    'From: a@b.c', 'Subject: s', 'Content-Type: multipart/mixed; boundary="X"', '', '--X', 'Content-Type: text/plain', '', 'hi', '--X',
    'Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="Snap.JPG"', '', Buffer.alloc(2000, 1).toString('base64'), '--X--', '',
  ].join('\r\n'));
  assert.equal(await matches({ attachment: {} }, withJpeg), true);
  assert.equal(await matches({ attachment: {} }, MAIL), false);
  assert.equal(await matches({ attachment: { type: 'image/*', filename: '*.jpg', size: { over: '1KB' } } }, withJpeg), true);
  assert.equal(await matches({ attachment: { type: 'image/png' } }, withJpeg), false);
  assert.equal(await matches({ attachment: { filename: { regex: '^snap', case_sensitive: true } } }, withJpeg), false);
  assert.equal(await matches({ attachment: { size: { over: '2KB' } } }, withJpeg), false);
});

test('quoted-printable preview is decoded before matching', { timeout: 5000 }, async () => {
  const raw = eml([...basicHeaders(), 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable'], 'T=FCr offen in Zone=\r\n 7\r\n');
  assert.equal(await matches({ preview: { lines: 2, contains: 'Tür offen in Zone 7' } }, raw, 'preview'), true);
});

test('nesting: keys ANDed, any/all/not with captures from the matching branch', { timeout: 5000 }, async () => {
  const rs = rules({
    name: 'n',
    when: {
      from: { domain: { is: 'nvr.local' } },
      any: [{ subject: { regex: '^FIRE (?<what>.+)$' } }, { subject: { regex: '^ALARM: (?<what>\\w+) (?<cam>Camera \\d+)$' } }],
      not: { header: { name: 'X-Priority', is: '5' } },
      all: [{ exists: 'X-Camera-Id' }, { not: { body: { contains: 'test mode' } } }],
    },
    publish: [],
  });
  const ev = rs.evaluate(await dataAt(MAIL, 'full'), NOW);
  assert.equal(ev.matched.length, 1);
  assert.deepEqual(ev.matched[0]!.captures, { what: 'Motion', cam: 'Camera 3' });
  const testMode = eml(basicHeaders({ 'X-Camera-Id': '1' }), 'this is test mode\r\n');
  assert.equal(rs.evaluate(await dataAt(testMode, 'full'), NOW).matched.length, 0);
});

test('Kleene staging: failing header conditions decide without the body (nothing pending)', { timeout: 5000 }, async () => {
  const rs = rules({ name: 'r', when: { from: { domain: { is: 'other.org' } }, body: { contains: 'motion' } } });
  const bare: MessageData = { mailbox: 'm', uid: 'u', msgNum: 1, size: MAIL.length };
  const ev0 = rs.evaluate(bare, NOW);
  assert.equal(ev0.decided, false);
  assert.deepEqual(ev0.pending, [{ rule: 'r', needs: 'headers' }]);
  const ev1 = rs.evaluate(await dataAt(MAIL, 'headers'), NOW);
  assert.equal(ev1.decided, true);
  assert.deepEqual(ev1.pending, []);
  assert.equal(ev1.matched.length, 0);
  assert.equal(rs.rules[0]!.needs, 'full');
});

test('Kleene staging: any[false, unknown] stays unknown; any[true, unknown] is decided', { timeout: 5000 }, async () => {
  const needBody = rules({ name: 'r', when: { any: [{ subject: { is: 'nope' } }, { body: { contains: 'motion' } }] } });
  const ev = needBody.evaluate(await dataAt(MAIL, 'headers'), NOW);
  assert.deepEqual(ev.pending, [{ rule: 'r', needs: 'full' }]);
  assert.equal(needBody.evaluate(await dataAt(MAIL, 'full'), NOW).matched.length, 1);
  const early = rules({ name: 'r', when: { any: [{ subject: { glob: 'ALARM*' } }, { body: { contains: 'nothing' } }] } });
  const ev2 = early.evaluate(await dataAt(MAIL, 'headers'), NOW);
  assert.equal(ev2.decided, true);
  assert.equal(ev2.matched.length, 1);
  // not(unknown) is unknown
  const neg = rules({ name: 'r', when: { not: { body: { contains: 'x' } } } });
  assert.deepEqual(neg.evaluate(await dataAt(MAIL, 'headers'), NOW).pending, [{ rule: 'r', needs: 'full' }]);
});

test('climbing: headers → preview → full, the cheapest next stage first', { timeout: 5000 }, async () => {
  const rs = rules(
    { name: 'p', when: { subject: { glob: 'ALARM*' }, preview: { lines: 3, contains: 'zone 3' } } },
    { name: 'p2', when: { preview: { lines: 10, contains: 'third' } } },
    { name: 'b', when: { subject: { glob: 'ALARM*' }, body: { contains: 'second line' } } },
  );
  assert.equal(rs.maxPreviewLines, 10);
  assert.deepEqual(rs.rules.map((r) => r.needs), [{ preview: 3 }, { preview: 10 }, 'full']);
  const d: MessageData = { mailbox: 'm', uid: 'u', msgNum: 1, size: MAIL.length };
  assert.deepEqual(rs.evaluate(d, NOW).pending.map((p) => p.needs), ['headers', { preview: 10 }, 'headers']);
  const h = await dataAt(MAIL, 'headers');
  assert.deepEqual(rs.evaluate(h, NOW).pending.map((p) => p.needs), [{ preview: 3 }, { preview: 10 }, 'full']);
  const p = await dataAt(MAIL, 'preview', 10);
  const evp = rs.evaluate(p, NOW);
  assert.deepEqual(evp.matched.map((m) => m.rule.name), ['p', 'p2']);
  assert.deepEqual(evp.pending, [{ rule: 'b', needs: 'full' }]);
  const f = await dataAt(MAIL, 'full');
  assert.deepEqual(rs.evaluate(f, NOW).matched.map((m) => m.rule.name), ['p', 'p2', 'b']);
  // a preview shorter than a rule needs is not enough
  const short = await dataAt(MAIL, 'preview', 2);
  assert.deepEqual(rs.evaluate(short, NOW).pending.map((x) => x.rule), ['p', 'p2', 'b']);
});

test('publishing needs: a matching size-only rule still waits for headers; publish: [] does not', { timeout: 5000 }, async () => {
  const rs = rules({ name: 'alert', when: { size: { over: 10 } } }, { name: 'silent', when: { size: { over: 10 } }, publish: [], then: 'delete' });
  const ev = rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 100 }, NOW);
  assert.deepEqual(ev.pending, [{ rule: 'alert', needs: 'headers' }]);
  assert.deepEqual(ev.matched.map((m) => m.rule.name), ['silent']);
  assert.equal(rs.rules[1]!.then, 'delete');
});

test('body: true and attachments need RETR; {{body}} in a template too', { timeout: 5000 }, async () => {
  const rs = rules(
    { name: 'b', when: { subject: { glob: 'ALARM*' } }, body: true },
    { name: 'a', attachments: { topic: 'snap' } },
    { name: 't', publish: { topic: 'x', payload: '{{body}}' } },
    { name: 'plain' },
  );
  assert.deepEqual(rs.rules.map((r) => r.needs), ['full', 'full', 'full', 'headers']);
  const ev = rs.evaluate(await dataAt(MAIL, 'headers'), NOW);
  assert.deepEqual(ev.pending.map((p) => p.needs), ['full', 'full', 'full']);
  assert.deepEqual(ev.matched.map((m) => m.rule.name), ['plain']);
});

test('oversize: body conditions are false, body: true rules match from headers', { timeout: 5000 }, async () => {
  const rs = rules(
    { name: 'body-cond', when: { body: { contains: 'motion' } } },
    { name: 'not-body', when: { not: { body: { contains: 'motion' } } } },
    { name: 'body-flag', when: { subject: { glob: 'ALARM*' } }, body: true },
    { name: 'att', when: { attachment: {} } },
  );
  const d = await dataAt(MAIL, 'headers', 20, { oversize: true });
  const ev = rs.evaluate(d, NOW);
  assert.equal(ev.decided, true);
  assert.deepEqual(ev.matched.map((m) => m.rule.name), ['not-body', 'body-flag']);
  const trace = ev.trace.find((t) => t.rule === 'body-cond')!;
  assert.match(trace.conditions[0]!.seen ?? '', /oversize/);
});

test('stop: later rules are skipped; an undecided earlier rule keeps the evaluation undecided', { timeout: 5000 }, async () => {
  const rs = rules(
    { name: 'first', when: { body: { contains: 'motion' } } },
    { name: 'stopper', when: { subject: { glob: 'ALARM*' } }, stop: true },
    { name: 'after', when: { subject: { glob: '*' } } },
  );
  const h = rs.evaluate(await dataAt(MAIL, 'headers'), NOW);
  assert.equal(h.decided, false);
  assert.deepEqual(h.pending, [{ rule: 'first', needs: 'full' }]);
  assert.deepEqual(h.matched.map((m) => m.rule.name), ['stopper']);
  assert.equal(h.trace[2]!.result, 'skipped');
  const f = rs.evaluate(await dataAt(MAIL, 'full'), NOW);
  assert.equal(f.decided, true);
  assert.deepEqual(f.matched.map((m) => m.rule.name), ['first', 'stopper']);
  // a matching stop rule first: nothing after it is evaluated or needed
  const rs2 = rules({ name: 's', when: { subject: { glob: 'ALARM*' } }, stop: true }, { name: 'later', when: { body: { contains: 'x' } } });
  const ev2 = rs2.evaluate(await dataAt(MAIL, 'headers'), NOW);
  assert.deepEqual([ev2.decided, ev2.pending.length, ev2.matched.length], [true, 0, 1]);
});

test('a rule without when matches every message; mailboxRuleNames selects rules in config order', { timeout: 5000 }, async () => {
  const all = [{ name: 'a' }, { name: 'b', when: { subject: { is: 'x' } } }, { name: 'c' }] as RuleConfig[];
  const rs = compileRules(all, { trustedAuthservIds: [], mailboxRuleNames: ['c', 'a'] });
  assert.deepEqual(rs.rules.map((r) => [r.name, r.index]), [['a', 0], ['c', 2]]);
  assert.equal(rs.evaluate(await dataAt(MAIL, 'headers'), NOW).matched.length, 2);
  assert.throws(() => compileRules(all, { trustedAuthservIds: [], mailboxRuleNames: ['zzz'] }), /unknown rule "zzz"/);
  assert.throws(() => compileRules([{ name: 'bad', when: { subject: { regex: '(' } } }] as RuleConfig[], opts));
});

test('trace lists every condition with result and value seen', { timeout: 5000 }, async () => {
  const rs = rules({ name: 'r', when: { subject: { contains: 'alarm' }, header: { name: 'X-Priority', is: '2' } } });
  const ev = rs.evaluate(await dataAt(MAIL, 'headers'), NOW);
  const t = ev.trace[0]!;
  assert.equal(t.result, 'failed');
  assert.deepEqual(t.conditions.map((c) => [c.path, c.result, c.seen]), [
    ['when.subject', 'matched', 'ALARM: Motion Camera 3'],
    ['when.header', 'failed', '1'],
    ['when', 'failed', undefined],
  ]);
});

test('evaluate without now caches per data state and refreshes when data changes', { timeout: 5000 }, async () => {
  const rs = rules({ name: 'r', when: { subject: { glob: 'ALARM*' } } });
  const d: MessageData = { mailbox: 'm', uid: 'u', msgNum: 1, size: MAIL.length };
  const e1 = rs.evaluate(d);
  assert.equal(rs.evaluate(d), e1);
  d.headers = (await dataAt(MAIL, 'headers')).headers;
  const e2 = rs.evaluate(d);
  assert.notEqual(e2, e1);
  assert.equal(e2.matched.length, 1);
  // A size not known yet (NaN: no LIST before a header-only rule needs it) is the same data too.
  const unsized: MessageData = { mailbox: 'm', uid: 'u2', msgNum: 2, size: NaN, headers: d.headers };
  const e3 = rs.evaluate(unsized);
  assert.equal(rs.evaluate(unsized), e3);
  // No rule reads the size: learning it (a LIST for the alert's size field) keeps the answer.
  unsized.size = MAIL.length;
  assert.equal(rs.evaluate(unsized), e3);
  // A rule that reads it: a new size is new data.
  const sized = rules({ name: 's', when: { subject: { glob: 'ALARM*' }, size: { under: 1_000_000 } } });
  const later: MessageData = { mailbox: 'm', uid: 'u3', msgNum: 3, size: NaN, headers: d.headers };
  const e4 = sized.evaluate(later);
  assert.equal(sized.evaluate(later), e4);
  later.size = MAIL.length;
  const e5 = sized.evaluate(later);
  assert.notEqual(e5, e4);
  assert.equal(e5.matched.length, 1);
});

test('wantsAttachment follows the rules attachment filters', { timeout: 5000 }, () => {
  const rs = rules({ name: 'a', attachments: { topic: 's', types: ['image/*'], filename: '*.jpg' } });
  assert.equal(rs.wantsAttachment({ contentType: 'image/jpeg', filename: 'x.JPG' }), true);
  assert.equal(rs.wantsAttachment({ contentType: 'image/jpeg', filename: 'x.png' }), false);
  assert.equal(rs.wantsAttachment({ contentType: 'application/pdf', filename: 'x.jpg' }), false);
  assert.equal(rules({ name: 'none' }).wantsAttachment({ contentType: 'image/jpeg' }), false);
});

test("the poller's evaluation (no trace, all-false shortcut) gives what the traced one gives, at every stage", { timeout: 10000 }, async () => {
  const sets: unknown[][] = [
    [{ name: 'hdr', when: { from: { domain: { is: 'nvr.local' } }, subject: { regex: '^ALARM: (?<event>\\w+)' } } }],
    [{ name: 'miss', when: { from: { domain: { is: 'elsewhere.org' } }, subject: { regex: '^(?<x>.)' }, body: { contains: 'zone' } } }],
    [{ name: 'any', when: { any: [{ subject: { regex: '^(?<first>\\w+)' } }, { from: { name: { regex: '^(?<second>\\w+)' } } }, { body: { contains: 'nope' } }] } }],
    [{ name: 'not', when: { not: { all: [{ from: { domain: { is: 'other.org' } } }, { preview: { lines: 2, contains: 'zone' } }] } } }],
    // A false `all` inside an undecided `any`: its unknown preview leaf still says what to fetch next.
    [{ name: 'nested', when: { any: [{ all: [{ from: { domain: { is: 'other.org' } } }, { preview: { lines: 3, contains: 'line' } }] }, { body: { contains: 'zone' } }] } }],
    [{ name: 'late', when: { all: [{ to: { domain: { is: 'nowhere.net' } } }, { any: [{ preview: { lines: 3, contains: 'line' } }, { attachment: { type: 'image/*' } }] }] } }],
    [
      { name: 'first', when: { subject: { contains: 'alarm' } }, stop: true },
      { name: 'second', when: { subject: { regex: '(?<never>x)' } } },
    ],
    [{ name: 'size', when: { size: { under: 1_000_000 }, header: { name: 'X-Multi', regex: '^(?<m>s\\w+)' } }, publish: { topic: 't/{{m}}', payload: '{{preview}}' } }],
  ];
  const summary = (ev: ReturnType<ReturnType<typeof rules>['evaluate']>) => ({
    matched: ev.matched.map((m) => ({ rule: m.rule.name, captures: { ...m.captures } })), pending: ev.pending, decided: ev.decided, refused: ev.refused,
  });
  for (const set of sets) {
    const rs = rules(...set);
    const datas: MessageData[] = [
      { mailbox: 'mb', uid: 'U', msgNum: 1, size: MAIL.length },
      await dataAt(MAIL, 'headers'), await dataAt(MAIL, 'preview', 2), await dataAt(MAIL, 'preview', 20), await dataAt(MAIL, 'full'),
      { ...(await dataAt(MAIL, 'headers')), oversize: true },
    ];
    for (const [i, d] of datas.entries()) {
      assert.deepEqual(summary(rs.evaluate(d)), summary(rs.evaluate(d, new Date())), `${JSON.stringify(set)} at data ${i}`);
    }
  }
});
