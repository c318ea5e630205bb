// The bench corpus is deterministic, has the promised mix (10 % alarms, half with JPEG snapshots) and well-formed messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { corpus, corpusMessage, kindAt, NVR_DOMAIN, PANEL_DOMAIN } from '../../scripts/bench/corpus.js';

test('same seed and index give the same bytes; another seed or index gives other bytes', () => {
  const a = corpusMessage(7, 12);
  const b = corpusMessage(7, 12);
  assert.ok(a.raw.equals(b.raw));
  assert.ok(!corpusMessage(8, 12).raw.equals(a.raw));
  assert.ok(!corpusMessage(7, 13).raw.equals(a.raw));
  // A message does not depend on the ones before it.
  const viaGenerator = [...corpus(7, 13)][12]!;
  assert.ok(viaGenerator.raw.equals(a.raw));
});

test('mix: every 10th message is an alarm, alternating snapshot and panel; attachments and newsletters among the rest', () => {
  const kinds = Array.from({ length: 200 }, (_, i) => kindAt(3, i));
  const alarms = kinds.filter((k) => k === 'alarm' || k === 'alarm-snapshot');
  assert.equal(alarms.length, 20);
  assert.equal(kinds.filter((k) => k === 'alarm-snapshot').length, 10);
  for (const k of ['attachment', 'newsletter', 'ordinary'] as const) {
    const n = kinds.filter((x) => x === k).length;
    assert.ok(n >= 30 && n <= 90, `${k}: ${n} of 180 non-alarm messages`);
  }
});

test('messages are CRLF-only, headers are the first block, and mailparser reads sender, subject and attachments', async () => {
  for (const i of [0, 1, 2, 3, 13, 23, 33]) {
    const m = corpusMessage(5, i);
    const text = m.raw.toString('latin1');
    assert.ok(!/[^\r]\n/.test(text), `message ${i} has a bare LF`);
    assert.equal(text.indexOf('\r\n\r\n') + 4, m.headerBytes, `message ${i}: headerBytes is the header block`);
    const parsed = await simpleParser(m.raw);
    assert.equal(parsed.subject, m.subject);
    assert.equal(parsed.from?.text.replace(/"/g, ''), m.from);
    const images = parsed.attachments.filter((a) => a.contentType === 'image/jpeg');
    if (m.kind === 'alarm-snapshot') {
      assert.equal(images.length, 1);
      assert.equal(images[0]!.content[0], 0xff);
      assert.equal(images[0]!.content[1], 0xd8);
      assert.ok(images[0]!.size >= 100 * 1024 && images[0]!.size <= 400 * 1024);
      assert.ok(m.from.endsWith(`@${NVR_DOMAIN}>`));
    } else assert.equal(images.length, 0);
    if (m.kind === 'alarm') assert.ok(m.from.endsWith(`@${PANEL_DOMAIN}>`));
    if (m.kind === 'attachment') {
      assert.equal(parsed.attachments.length, 1);
      assert.ok(parsed.attachments[0]!.size >= 100 * 1024 && parsed.attachments[0]!.size <= 500 * 1024);
    }
  }
});

test('a 100-message sample is about 22 MB with headers about 1.3 % of the bytes', () => {
  let total = 0;
  let head = 0;
  for (const m of corpus(1, 100)) {
    total += m.raw.length;
    head += m.headerBytes;
    assert.ok(!m.raw.toString('latin1').split('\r\n').some((l) => l.startsWith('.')), `message ${m.index} has a line starting with a dot`);
  }
  assert.ok(total > 15e6 && total < 30e6, `total ${total}`);
  const share = head / total;
  assert.ok(share > 0.009 && share < 0.018, `header share ${share}`);
});
