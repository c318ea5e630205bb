// Tests of rule validation: every error names the exact path; good rules pass; the JSON Schema can be generated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { RuleSchema, RulesSchema } from '../../src/rules/schema.js';

function issues(rules: unknown[]): [string, string][] {
  const r = RulesSchema.safeParse(rules);
  if (r.success) return [];
  return r.error.issues.map((i) => [i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, ''), i.message]);
}
function pathsOf(rules: unknown[]): string[] {
  return issues(rules).map(([p]) => p);
}

test('a full-featured rule validates', { timeout: 5000 }, () => {
  const rule = {
    name: 'camera-motion',
    when: {
      from: { contains: '@nvr.local' },
      to: { domain: { is: 'example.com' } },
      subject: { regex: '^ALARM: (?<event>.+?) (?<camera>Camera \\d+)$' },
      header: { name: 'X-Priority', is: '1' },
      message_id: { glob: '*@nvr.local>' },
      date: { newer_than: '1h' },
      size: { over: '10KB', under: '5MB' },
      exists: 'X-Camera-Id',
      not_exists: ['X-Spam'],
      preview: { lines: 20, contains: 'Zone 3' },
      body: { contains: 'motion', regex: 'zone (?<zone>\\d+)' },
      attachment: { type: 'image/*', filename: '*.jpg', size: { over: '1KB' } },
      any: [{ subject: { one_of: ['a', 'b'], case_sensitive: true } }, { not: { cc: { address: { is: 'x@y' } } } }],
      all: [{ sender: { localpart: { is: 'nvr' } } }],
    },
    body: true,
    publish: [
      { topic: 'alerts/{{camera}}', payload: 'default', qos: 1, retain: false, properties: { 'x-source': '{{mailbox}}' } },
      { topic: 'events/{{zone}}/{{header.X-Camera-Id}}', payload: '{"e":{{event|json}}}', qos: 0 },
    ],
    attachments: { topic: 'snapshots/{{camera}}', types: ['image/*'], max_size: '2MB' },
    stop: true,
    rate_limit: '5/min',
    then: 'delete',
  };
  assert.deepEqual(issues([rule]), []);
  assert.equal(RuleSchema.safeParse(rule).success, true);
});

test('invalid regex, glob, size, duration report the exact path', { timeout: 5000 }, () => {
  const rules = [
    { name: 'ok' },
    { name: 'ok2' },
    {
      name: 'bad',
      when: {
        subject: { regex: '(unclosed' },
        message_id: { glob: 'ends with \\' },
        size: { over: '10 parsecs' },
        date: { older_than: 'soon' },
        any: [{ body: { regex: '(a+)+$' } }],
      },
    },
  ];
  const p = pathsOf(rules);
  assert.ok(p.includes('[2].when.subject.regex'), p.join());
  assert.ok(p.includes('[2].when.message_id.glob'), p.join());
  assert.ok(p.includes('[2].when.size.over'), p.join());
  assert.ok(p.includes('[2].when.date.older_than'), p.join());
  assert.ok(p.includes('[2].when.any[0].body.regex'), p.join());
  const msgs = issues(rules).map(([, m]) => m).join('\n');
  assert.match(msgs, /invalid regex/);
  assert.match(msgs, /backtrack/);
});

test('nested unbounded quantifiers are rejected, bounded or flat ones are accepted', { timeout: 5000 }, () => {
  const check = (re: string) => pathsOf([{ name: 'r', when: { subject: { regex: re } } }]).length === 0;
  for (const bad of ['(a+)+', '(\\w*)*', '((ab)+c)*', '(?:x+y?)+', '(?<n>a*)+', '(a+){2,}']) assert.equal(check(bad), false, bad);
  for (const good of ['^ALARM: (?<event>.+?) (?<camera>Camera \\d+)$', '(\\d{1,3}\\.){3}\\d{1,3}', '(ab)+', '[(a+)]+', '\\(a+\\)+', '(a|b)*c']) {
    assert.equal(check(good), true, good);
  }
});

test('action: true requires authenticated: true or shared_secret at the top level', { timeout: 5000 }, () => {
  const pin = { from: { address: { is: 'me@example.com' } } };
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, subject: { is: 'open' } } }]), ['[0].action']);
  assert.deepEqual(pathsOf([{ name: 'a', action: true }]), ['[0].action', '[0].action']);
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, any: [{ authenticated: true }, { subject: { is: 'x' } }] } }]), ['[0].action']);
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, not: { authenticated: true } } }]), ['[0].action']);
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, authenticated: false } }]), ['[0].action']);
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, authenticated: true } }]), []);
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, all: [{ shared_secret: { secret: 'abcdefghijklmnop' } }] } }]), []);
  assert.deepEqual(pathsOf([{ name: 'a', action: true, when: { ...pin, shared_secret: { secret: 'abcdefghijklmnop', header: 'X-Token' } } }]), []);
  assert.deepEqual(pathsOf([{ name: 'a', when: { shared_secret: { secret: 'short' } } }]), ['[0].when.shared_secret.secret']);
});

test('action: true requires the sender pinned with from: address or domain (is / one_of) at the top level', { timeout: 5000 }, () => {
  const rule = (when: Record<string, unknown>) => [{ name: 'a', action: true, when: { authenticated: true, ...when } }];
  // the issue's case: contains accepts me@example.com.evil.example
  const loose = issues(rule({ from: { contains: 'me@example.com' } }));
  assert.deepEqual(loose.map(([p]) => p), ['[0].when.from']);
  assert.match(loose[0]![1], /pinned.*address.*domain.*me@example\.com\.evil\.example/);
  for (const from of [
    { address: { contains: 'me@example.com' } }, { domain: { regex: 'example\\.com' } }, { domain: { glob: '*example.com' } },
    { name: { is: 'Me' } }, { localpart: { is: 'me' } }, { is: 'Me <me@example.com>' },
  ]) assert.deepEqual(pathsOf(rule({ from })), ['[0].when.from'], JSON.stringify(from));
  assert.deepEqual(pathsOf(rule({})), ['[0].action']);
  // a from inside any/not does not pin: another branch lets anyone through
  assert.deepEqual(pathsOf(rule({ any: [{ from: { address: { is: 'me@example.com' } } }, { subject: { is: 'x' } }] })), ['[0].action']);
  for (const from of [
    { address: { is: 'me@example.com' } }, { address: { one_of: ['me@example.com', 'you@example.com'] } }, { domain: { is: 'example.com' } },
    { domain: { one_of: ['example.com'] }, name: { contains: 'Me' } },
  ]) assert.deepEqual(pathsOf(rule({ from })), [], JSON.stringify(from));
  assert.deepEqual(pathsOf(rule({ all: [{ from: { domain: { is: 'example.com' } } }] })), []);
});

test('max_age, max_future, replay_window: durations, action rules only, the window covers the Date range', { timeout: 5000 }, () => {
  const cmd = (extra: Record<string, unknown>) => [{ name: 'a', action: true, when: { authenticated: true, from: { domain: { is: 'example.com' } } }, ...extra }];
  assert.deepEqual(pathsOf(cmd({ max_age: '10m', max_future: '1m', replay_window: '7d' })), []);
  assert.deepEqual(pathsOf(cmd({ max_age: 'soon' })), ['[0].max_age']);
  assert.deepEqual(pathsOf(cmd({ max_age: '2d', replay_window: '1d' })), ['[0].replay_window']);
  assert.deepEqual(pathsOf(cmd({ replay_window: '30m' })), ['[0].replay_window']);
  assert.deepEqual(pathsOf([{ name: 'b', max_age: '1h', replay_window: '1d' }]), ['[0].max_age', '[0].replay_window']);
});

test('names: pattern and uniqueness', { timeout: 5000 }, () => {
  assert.deepEqual(pathsOf([{ name: 'has space' }]), ['[0].name']);
  assert.deepEqual(pathsOf([{ name: 'x'.repeat(65) }]), ['[0].name']);
  assert.deepEqual(pathsOf([{ name: 'a' }, { name: 'b' }, { name: 'a' }]), ['[2].name']);
});

test('strict objects: unknown keys are rejected where they are', { timeout: 5000 }, () => {
  assert.deepEqual(pathsOf([{ name: 'a', wen: {} }]), ['[0]']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { subjct: { is: 'x' } } }]), ['[0].when']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { subject: { equals: 'x' } } }]), ['[0].when.subject']);
  assert.deepEqual(pathsOf([{ name: 'a', publish: { topic: 'a', qos: 3 } }]), ['[0].publish']);
});

test('empty conditions and matchers are rejected', { timeout: 5000 }, () => {
  assert.deepEqual(pathsOf([{ name: 'a', when: {} }]), ['[0].when']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { any: [{}] } }]), ['[0].when.any[0]']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { any: [] } }]), ['[0].when.any']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { subject: {} } }]), ['[0].when.subject']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { subject: { case_sensitive: true } } }]), ['[0].when.subject']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { from: {} } }]), ['[0].when.from']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { header: { name: 'X-A' } } }]), ['[0].when.header']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { header: [{ name: 'X-A', is: '1' }, { name: 'bad name:', is: '1' }] } }]), ['[0].when.header[1].name']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { size: {} } }]), ['[0].when.size']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { date: {} } }]), ['[0].when.date']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { preview: { lines: 0, contains: 'x' } } }]), ['[0].when.preview.lines']);
  assert.deepEqual(pathsOf([{ name: 'a', when: { preview: { lines: 5 } } }]), ['[0].when.preview']);
});

test('topic templates: literal text checked, variables must be known', { timeout: 5000 }, () => {
  const t = (topic: string, when: unknown = { subject: { regex: '(?<cam>\\d+)' } }) => pathsOf([{ name: 'a', when, publish: { topic } }]);
  assert.deepEqual(t('alerts/{{cam}}'), []);
  assert.deepEqual(t('alerts/{{rule}}/{{from.address}}/{{header.X-Foo}}'), []);
  assert.deepEqual(t('/alerts'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/#'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/+/x'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts//x'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/../x'), ['[0].publish.topic']);
  assert.deepEqual(t(''), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/{{cam'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/{{nope}}'), ['[0].publish.topic']);
  assert.deepEqual(t('alerts/{{cam|upper}}'), ['[0].publish.topic']);
  // list form gives the index
  assert.deepEqual(pathsOf([{ name: 'a', publish: [{ topic: 'ok' }, { topic: 'x/{{zz}}' }] }]), ['[0].publish[1].topic']);
  assert.deepEqual(pathsOf([{ name: 'a', publish: { topic: 'ok', properties: { k: '{{zz}}' } } }]), ['[0].publish.properties.k']);
  assert.deepEqual(pathsOf([{ name: 'a', publish: { topic: 'ok', payload: '{{zz}}' } }]), ['[0].publish.payload']);
  // two unknown variables in one field: each issue names the field once (zod prefixes an issue's path in place)
  assert.deepEqual(pathsOf([{ name: 'a' }, { name: 'b', publish: { topic: 'x/{{p}}/{{q}}' } }]), ['[1].publish.topic', '[1].publish.topic']);
  assert.deepEqual(pathsOf([{ name: 'a', attachments: { topic: 'snap/{{zz}}' } }]), ['[0].attachments.topic']);
});

test('rate_limit and then are validated', { timeout: 5000 }, () => {
  assert.deepEqual(pathsOf([{ name: 'a', rate_limit: '5/fortnight' }]), ['[0].rate_limit']);
  assert.deepEqual(pathsOf([{ name: 'a', then: 'archive' }]), ['[0].then']);
  assert.deepEqual(pathsOf([{ name: 'a', attachments: { topic: 's', max_size: 'huge' } }]), ['[0].attachments.max_size']);
});

test('JSON Schema generation works and carries descriptions', { timeout: 5000 }, () => {
  const js = z.toJSONSchema(RuleSchema) as { properties: Record<string, { description?: string }> };
  assert.ok(js.properties.name);
  assert.match(js.properties.action!.description ?? '', /authenticated/);
  assert.match(JSON.stringify(js), /case-insensitive/);
});

test('homeassistant.binary_sensor: defaults (motion, 30s, 50 entities), known template variables only, HA device classes only', () => {
  const base = { name: 'cam', when: { subject: { regex: '^Motion (?<camera>.+)$' } } };
  const ok = RuleSchema.parse({ ...base, homeassistant: { binary_sensor: { per: '{{camera}}' } } });
  assert.deepEqual(ok.homeassistant?.binary_sensor, { per: '{{camera}}', device_class: 'motion', off_delay: '30s', max_entities: 50 });
  assert.deepEqual(issues([{ ...base, homeassistant: { binary_sensor: { per: '{{cam}}' } } }]).map(([p]) => p), ['[0].homeassistant.binary_sensor.per']);
  assert.deepEqual(issues([{ ...base, homeassistant: { binary_sensor: { device_class: 'doorbell' } } }]).map(([p]) => p), ['[0].homeassistant.binary_sensor.device_class']);
  assert.deepEqual(issues([{ ...base, homeassistant: { binary_sensor: { off_delay: 'soon' } } }]).map(([p]) => p), ['[0].homeassistant.binary_sensor.off_delay']);
  // An unknown entity kind: the unknown key and the missing binary_sensor are both reported.
  assert.deepEqual(issues([{ ...base, homeassistant: { sensor: {} } }]).map(([p]) => p).sort(), ['[0].homeassistant', '[0].homeassistant.binary_sensor']);
});
