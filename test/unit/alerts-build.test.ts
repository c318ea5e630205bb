// Tests of alert building: stable ids, the default JSON alert, templates, properties, attachments, hostile content, secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertId, buildPublications, ALERT_FIELD_LIMIT, type BuildContext } from '../../src/alerts/build.js';
import { compileRules, type RuleConfig, type MessageData } from '../../src/rules/index.js';
import { basicHeaders, dataAt, eml } from '../fixtures/mail/messages.js';

const NOW = new Date('2025-07-01T09:00:00Z');
const ctx: BuildContext = { baseTopic: 'pop2mqtt', now: NOW };

async function build(rule: unknown, raw: Buffer, stage: 'headers' | 'full' = 'headers', extra: Partial<MessageData> = {}, bctx: BuildContext = ctx) {
  const rs = compileRules([rule] as RuleConfig[], { trustedAuthservIds: [] });
  const d = await dataAt(raw, stage, 20, extra);
  const ev = rs.evaluate(d, NOW);
  assert.equal(ev.decided, true, JSON.stringify(ev.pending));
  assert.equal(ev.matched.length, 1, 'rule should match');
  return buildPublications(ev.matched[0]!, d, bctx);
}
const json = (b: Buffer) => JSON.parse(b.toString('utf8')) as Record<string, unknown>;

test('alertId is stable per mailbox+uid+rule and differs otherwise', { timeout: 5000 }, () => {
  assert.equal(alertId('mb', 'u1', 'r'), alertId('mb', 'u1', 'r'));
  assert.match(alertId('mb', 'u1', 'r'), /^[0-9a-f]{16}$/);
  assert.notEqual(alertId('mb', 'u1', 'r'), alertId('mb', 'u2', 'r'));
  assert.notEqual(alertId('mb', 'u1', 'r'), alertId('mb', 'u1', 'r2'));
  assert.notEqual(alertId('mb', 'u1', 'r'), alertId('mb2', 'u1', 'r'));
  assert.notEqual(alertId('a\u0000b', 'c', 'r'), alertId('a', 'b\u0000c', 'r'));
});

test('default alert: fields, captures at top level without overriding reserved keys', { timeout: 5000 }, async () => {
  const pubs = await build(
    { name: 'cam', when: { subject: { regex: '^ALARM: (?<event>\\w+) (?<subject>Camera) (?<id>\\d+)$' } }, publish: { topic: 'alerts/{{event}}' } },
    eml(basicHeaders({ To: 'a@x.org, B <b@y.org>' })),
  );
  assert.equal(pubs.length, 1);
  const p = pubs[0]!;
  assert.equal(p.topic, 'pop2mqtt/alerts/Motion');
  assert.deepEqual([p.qos, p.retain, p.kind], [1, false, 'alert']);
  assert.equal(p.alertId, alertId('mb', 'UID1', 'cam'));
  const a = json(p.payload);
  assert.equal(a.id, p.alertId);
  assert.equal(a.mailbox, 'mb');
  assert.equal(a.rule, 'cam');
  assert.equal(a.uid, 'UID1');
  assert.equal(a.from, 'NVR <nvr@nvr.local>');
  assert.equal(a.from_address, 'nvr@nvr.local');
  assert.deepEqual(a.to, ['a@x.org', 'b@y.org']);
  assert.equal(a.subject, 'ALARM: Motion Camera 3'); // not replaced by the capture named "subject"
  assert.equal(a.id, p.alertId); // not replaced by the capture named "id"
  assert.equal(a.date, '2025-07-01T08:52:37.000Z');
  assert.equal(a.event, 'Motion');
  assert.deepEqual(a.captures, { event: 'Motion', subject: 'Camera', id: '3' });
  assert.equal(a.oversize, undefined);
  assert.equal(a.suppressed, undefined);
});

test('date null when unparseable; suppressed and oversize reported', { timeout: 5000 }, async () => {
  const pubs = await build({ name: 'r', body: true }, eml(basicHeaders({ Date: 'Someday' })), 'headers', { oversize: true }, { ...ctx, suppressed: 4 });
  const a = json(pubs[0]!.payload);
  assert.equal(a.date, null);
  assert.equal(a.oversize, true);
  assert.equal(a.suppressed, 4);
});

test('template payload, qos/retain, user properties and several publications', { timeout: 5000 }, async () => {
  const pubs = await build(
    {
      name: 'r',
      when: { subject: { regex: '(?<cam>Camera \\d+)' } },
      publish: [
        { topic: 'cams/{{cam}}/state', payload: 'ON', qos: 0, retain: true, properties: { 'x-source': '{{mailbox}}', 'x-subj': '{{subject}}' } },
        { topic: 'cams/{{cam}}/json', payload: '{"s":{{subject|json}},"size":{{size}}}', qos: 2 },
      ],
    },
    eml(basicHeaders()),
  );
  assert.deepEqual(pubs.map((p) => [p.topic, p.qos, p.retain]), [['pop2mqtt/cams/Camera 3/state', 0, true], ['pop2mqtt/cams/Camera 3/json', 2, false]]);
  assert.equal(pubs[0]!.payload.toString(), 'ON');
  assert.deepEqual(pubs[0]!.properties, { userProperties: { 'x-source': 'mb', 'x-subj': 'ALARM: Motion Camera 3' } });
  assert.deepEqual(json(pubs[1]!.payload), { s: 'ALARM: Motion Camera 3', size: eml(basicHeaders()).length });
});

test('attachments: raw bytes and a meta message, filtered by type/size/count', { timeout: 5000 }, async () => {
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01, 0xff, 0xd9]);
  const raw = Buffer.from([
    ...basicHeaders(), 'Content-Type: multipart/mixed; boundary="X"', '', '--X', 'Content-Type: text/plain', '', 'Motion', '--X',
    'Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="a.jpg"', '', jpeg.toString('base64'), '--X',
    'Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="big.jpg"', '', Buffer.alloc(3000).toString('base64'), '--X',
    'Content-Type: application/pdf', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="r.pdf"', '', 'JVBERi0=', '--X--', '',
  ].join('\r\n'));
  const pubs = await build(
    { name: 'cam', when: { subject: { regex: '(?<camera>Camera \\d+)' } }, publish: { topic: 'alerts/{{camera}}' }, attachments: { topic: 'snapshots/{{camera}}', types: ['image/*'], max_size: '2KB', retain: true } },
    raw, 'full',
  );
  assert.deepEqual(pubs.map((p) => [p.kind, p.topic]), [
    ['alert', 'pop2mqtt/alerts/Camera 3'],
    ['attachment', 'pop2mqtt/snapshots/Camera 3'],
    ['attachment-meta', 'pop2mqtt/snapshots/Camera 3/meta'],
  ]);
  assert.deepEqual(pubs[1]!.payload, jpeg);
  assert.equal(pubs[1]!.retain, true);
  const meta = json(pubs[2]!.payload);
  assert.equal(meta.filename, 'a.jpg');
  assert.equal(meta.content_type, 'image/jpeg');
  assert.equal(meta.size, jpeg.length);
  assert.equal(meta.count, 1);
  assert.equal(pubs.every((p) => p.alertId === pubs[0]!.alertId), true);
});

test('hostile subjects: 64 KB, invalid UTF-8, NUL, RFC 2047 encoding / and # — valid JSON, capped, topic inside prefix', { timeout: 5000 }, async () => {
  const rule = { name: 'r', when: { subject: { regex: '^(?<s>.*)$' } }, publish: [{ topic: 'alerts/{{subject}}' }, { topic: 'by/{{s}}/{{from.name}}' }] };
  const cases: Buffer[] = [
    eml(basicHeaders({ Subject: 'A'.repeat(64 * 1024) })),
    Buffer.concat([Buffer.from('From: x@y\r\nSubject: bad '), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]), Buffer.from(' end\r\n\r\nbody')]),
    eml(basicHeaders({ Subject: 'nul\u0000byte and \u001b[31mansi' })),
    eml(basicHeaders({ Subject: '=?utf-8?q?a=2Fb=23c=2B=2F..=2F..?=', From: '=?utf-8?b?Ly4uLyMr?= <x@y>' })),
    eml(basicHeaders({ Subject: '=?utf-8?q?=00=01=FF?=' })),
  ];
  for (const raw of cases) {
    const pubs = await build(rule, raw);
    for (const p of pubs) {
      assert.ok(p.topic.startsWith('pop2mqtt/alerts/') || p.topic.startsWith('pop2mqtt/by/'), p.topic);
      const levels = p.topic.split('/');
      assert.equal(levels.length, p.topic.startsWith('pop2mqtt/by/') ? 4 : 3, p.topic);
      for (const l of levels) assert.ok(l !== '' && l !== '.' && l !== '..' && !/[#+\u0000]/.test(l), p.topic);
      const a = json(p.payload);
      assert.equal(typeof a.subject, 'string');
      assert.ok((a.subject as string).length <= ALERT_FIELD_LIMIT);
      assert.equal(Buffer.from(p.payload.toString('utf8'), 'utf8').equals(p.payload), true); // valid UTF-8
    }
  }
  const big = json((await build(rule, cases[0]!))[0]!.payload);
  // the capture comes from the regex, which sees only regex_input_limit (4 KiB) of the Subject: nothing to truncate
  assert.deepEqual(big.truncated, ['subject']);
  assert.equal((big.captures as Record<string, string>).s, 'A'.repeat(4096));
  const enc = await build(rule, cases[3]!);
  assert.equal(enc[0]!.topic, 'pop2mqtt/alerts/a_b_c__.._..');
  assert.equal(enc[1]!.topic.split('/')[3], '_.._#+'.replace(/[#+]/g, '_'));
});

test('shared secrets never reach topics, payloads or properties', { timeout: 5000 }, async () => {
  const secret = 'Garage-Token-9f8e7d';
  const pubs = await build(
    { name: 'cmd', action: true, when: { shared_secret: { secret }, from: { address: { is: 'nvr@nvr.local' } }, subject: { regex: '^(?<cmd>\\w+)' } }, publish: [{}, { topic: 'cmd/{{subject}}', payload: '{{subject}}', properties: { s: '{{subject}}' } }] },
    eml(basicHeaders({ Subject: `open ${secret}` })),
  );
  for (const p of pubs) {
    assert.equal(p.topic.includes(secret), false);
    assert.equal(p.payload.toString().includes(secret), false);
    assert.equal(JSON.stringify(p.properties ?? {}).includes(secret), false);
  }
  assert.equal(json(pubs[0]!.payload).action, true);
  assert.equal(pubs[0]!.topic, 'pop2mqtt/alerts/cmd');
});

test('baseTopic trailing slash and empty base', { timeout: 5000 }, async () => {
  const a = await build({ name: 'r' }, eml(basicHeaders()), 'headers', {}, { baseTopic: 'home/mail/', now: NOW });
  assert.equal(a[0]!.topic, 'home/mail/alerts/r');
  const b = await build({ name: 'r' }, eml(basicHeaders()), 'headers', {}, { baseTopic: '', now: NOW });
  assert.equal(b[0]!.topic, 'alerts/r');
});

test('preview is included when the rule uses it', { timeout: 5000 }, async () => {
  const raw = eml(basicHeaders(), 'Zone 3 open\r\nline 2\r\n');
  const rs = compileRules([{ name: 'p', when: { preview: { lines: 1, contains: 'zone' } } }] as RuleConfig[], { trustedAuthservIds: [] });
  const d = await dataAt(raw, 'preview', 1);
  const ev = rs.evaluate(d, NOW);
  const a = json(buildPublications(ev.matched[0]!, d, ctx)[0]!.payload);
  assert.equal(a.preview, 'Zone 3 open');
});
