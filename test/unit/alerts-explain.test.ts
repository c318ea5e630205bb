// Tests of explainMessage/formatExplain: replayed fetch plan, per-rule traces and the publications the agent would send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules, type RuleConfig } from '../../src/rules/index.js';
import { explainMessage, formatExplain } from '../../src/alerts/explain.js';
import { basicHeaders, eml } from '../fixtures/mail/messages.js';

const NOW = new Date('2025-07-01T09:00:00Z');
const rs = (...r: unknown[]) => compileRules(r as RuleConfig[], { trustedAuthservIds: [] });
const MAIL = eml(basicHeaders(), 'Motion in Zone 3\r\nline two\r\n');

test('fetch plan: nothing / TOP 0 / TOP N / RETR, as the staged evaluation would do', { timeout: 5000 }, async () => {
  const size = await explainMessage(MAIL, rs({ name: 's', when: { size: { over: 1 } }, publish: [] }), { now: NOW });
  assert.deepEqual([size.wouldFetch, size.fetches], ['nothing', []]);
  const hdr = await explainMessage(MAIL, rs({ name: 'h', when: { subject: { contains: 'alarm' } } }), { now: NOW });
  assert.deepEqual([hdr.wouldFetch, hdr.fetches], ['TOP 0', ['TOP 0']]);
  const pv = await explainMessage(MAIL, rs({ name: 'p', when: { subject: { contains: 'alarm' }, preview: { lines: 5, contains: 'zone 3' } } }), { now: NOW });
  assert.deepEqual([pv.wouldFetch, pv.fetches], ['TOP 5', ['TOP 0', 'TOP 5']]);
  const full = await explainMessage(MAIL, rs({ name: 'b', when: { body: { contains: 'zone 3' } } }), { now: NOW });
  assert.deepEqual([full.wouldFetch, full.fetches], ['RETR', ['RETR']]);
  // header conditions that fail spare the body
  const spared = await explainMessage(MAIL, rs({ name: 'b', when: { subject: { is: 'nope' }, body: { contains: 'zone 3' } } }), { now: NOW });
  assert.deepEqual([spared.wouldFetch, spared.matched], ['TOP 0', []]);
  // oversize: RETR refused, body: true rule still matches
  const big = await explainMessage(MAIL, rs({ name: 'b', when: { subject: { glob: 'ALARM*' } }, body: true }), { now: NOW, maxMessageSize: 10 });
  assert.deepEqual(big.fetches, ['TOP 0', 'RETR refused (oversize)']);
  assert.deepEqual(big.matched, ['b']);
  assert.equal(JSON.parse(big.rules[0]!.publications[0]!.payload!).oversize, true);
});

test('explain reports every rule with conditions and exact publications', { timeout: 5000 }, async () => {
  const r = await explainMessage(MAIL, rs(
    { name: 'cam', when: { subject: { regex: '(?<camera>Camera \\d+)' } }, publish: { topic: 'alerts/{{camera}}' } },
    { name: 'other', when: { from: { domain: { is: 'elsewhere.org' } } } },
  ), { now: NOW, mailbox: 'home', baseTopic: 'p2m' });
  assert.deepEqual(r.matched, ['cam']);
  assert.equal(r.decided, true);
  assert.equal(r.message.subject, 'ALARM: Motion Camera 3');
  assert.equal(r.rules[0]!.publications[0]!.topic, 'p2m/alerts/Camera 3');
  assert.equal(JSON.parse(r.rules[0]!.publications[0]!.payload!).mailbox, 'home');
  assert.equal(r.rules[1]!.result, 'failed');
  assert.deepEqual(r.rules[1]!.publications, []);
  const text = formatExplain(r);
  assert.match(text, /would fetch: TOP 0/);
  assert.match(text, /✓ rule cam: matched/);
  assert.match(text, /✗ rule other: failed/);
  assert.match(text, /when\.from \[domain is "elsewhere\.org"\] — seen: NVR <nvr@nvr\.local>/);
  assert.match(text, /→ alert p2m\/alerts\/Camera 3 qos=1/);
});

test('attachments are shown by size, not dumped', { timeout: 5000 }, async () => {
  const raw = Buffer.from([
    ...basicHeaders(), 'Content-Type: multipart/mixed; boundary="X"', '', '--X', 'Content-Type: text/plain', '', 'hi', '--X',
    'Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="a.jpg"', '', Buffer.from([0xff, 0xd8, 0xff, 0xd9]).toString('base64'), '--X--', '',
  ].join('\r\n'));
  const r = await explainMessage(raw, rs({ name: 'a', attachments: { topic: 'snap' } }), { now: NOW });
  const att = r.rules[0]!.publications.find((p) => p.kind === 'attachment')!;
  assert.equal(att.payload, undefined);
  assert.equal(att.bytes, 4);
  assert.match(formatExplain(r), /→ attachment pop2mqtt\/snap qos=1: <4 bytes>/);
});

test('a message that cannot be parsed is reported, not thrown', { timeout: 5000 }, async () => {
  const r = await explainMessage(Buffer.from([0, 1, 2, 0xff, 0x0a, 0x80]), rs({ name: 'h', when: { subject: { contains: 'x' } } }), { now: NOW });
  assert.equal(r.error?.code, 'MALFORMED_HEADERS');
  assert.deepEqual(r.matched, []);
  assert.match(formatExplain(r), /cannot parse the message \(MALFORMED_HEADERS\)/);
});
