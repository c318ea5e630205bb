// Regex conditions read at most regex_input_limit characters per evaluation, shared across the values one condition examines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMatch } from '../../src/rules/match.js';
import { DEFAULT_REGEX_INPUT_LIMIT, validateRegex } from '../../src/rules/regex.js';
import { compileRules, type RuleConfig } from '../../src/rules/index.js';
import { basicHeaders, dataAt, eml } from '../fixtures/mail/messages.js';
import { minimalYaml, parse, parseError } from '../support/config-yaml.js';

const NOW = new Date('2025-07-01T09:00:00Z');
const T = { timeout: 30_000 };

/** A regex that captures everything it is shown, so the capture's length is what the regex saw. */
const SEE_ALL = { regex: '^(?<all>[\\s\\S]*)$' };

test('a regex sees the first regex_input_limit characters of a value (default 4 KiB)', T, () => {
  assert.equal(DEFAULT_REGEX_INPUT_LIMIT, 4096);
  const long = 'a'.repeat(100_000);
  assert.equal(compileMatch(SEE_ALL)(long).captures?.all?.length, 4096);
  assert.equal(compileMatch(SEE_ALL, 100)(long).captures?.all?.length, 100);
  const needle = compileMatch({ regex: 'needle' }, 1000);
  assert.equal(needle('x'.repeat(995) + 'needle').ok, false, 'the needle ends past the cap');
  assert.equal(needle('x'.repeat(994) + 'needle').ok, true, 'the needle ends exactly at the cap');
  // the linear match types still see the whole value
  assert.equal(compileMatch({ contains: 'needle' }, 1000)('x'.repeat(50_000) + 'needle').ok, true);
  assert.equal(compileMatch({ glob: '*needle' }, 1000)('x'.repeat(50_000) + 'needle').ok, true);
});

test('one budget is spent across the values a condition examines; once spent, a regex matches nothing', T, () => {
  const m = compileMatch(SEE_ALL, 1000);
  const budget = { left: 1000 };
  assert.equal(m('b'.repeat(600), budget).captures?.all?.length, 600);
  assert.equal(budget.left, 400);
  assert.equal(m('c'.repeat(600), budget).captures?.all?.length, 400);
  assert.equal(budget.left, 0);
  assert.equal(m('d', budget).ok, false);
  assert.equal(m('', budget).ok, true, 'an empty value costs nothing and is still matched');
});

test('a 100 KB Subject of 1,700 encoded words: the rule regex sees 4 KiB of it, and captures from its start', T, async () => {
  const words = Array.from({ length: 1700 }, () => '=?utf-8?q?' + 'w'.repeat(60) + '?=').join(' ');
  const raw = eml(basicHeaders({ Subject: `${words} cam7 motion` }));
  const data = await dataAt(raw, 'headers');
  assert.ok(data.headers!.subject.length >= 100_000, 'the encoded words decode to one long word');
  const rs = compileRules([{ name: 'cam', when: { subject: { regex: '(?<camera>\\w+) motion' } }, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  const ev = rs.evaluate(data, NOW);
  assert.equal(ev.decided, true);
  assert.equal(ev.matched.length, 0, '" motion" lies past the cap');
  const all = compileRules([{ name: 'all', when: { subject: SEE_ALL }, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  const hit = all.evaluate(data, NOW).matched[0];
  assert.equal(hit?.captures.all, 'w'.repeat(4096));
  // a short Subject is matched as before
  const ok = rs.evaluate(await dataAt(eml(basicHeaders({ Subject: 'ALARM cam7 motion' })), 'headers'), NOW);
  assert.deepEqual(ok.matched[0]?.captures, { camera: 'cam7' });
});

test('many instances of a header share the budget: the regex reads the first ones only', T, async () => {
  const instances = Array.from({ length: 60 }, (_, i) => `X-Cam: ${i === 10 ? 'needle' : 'n'.repeat(1000)}`);
  const data = await dataAt(eml(basicHeaders().concat(instances)), 'headers');
  const when = { header: { name: 'X-Cam', regex: 'needle' } };
  const small = compileRules([{ name: 'h', when, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  assert.equal(small.evaluate(data, NOW).matched.length, 0, 'the 11th instance lies past 4 KiB');
  const big = compileRules([{ name: 'h', when, publish: [] }] as RuleConfig[], { trustedAuthservIds: [], regexInputLimit: 16 * 1024 });
  assert.equal(big.evaluate(data, NOW).matched.length, 1, 'a larger regex_input_limit reads further');
  // contains is linear and sees every instance whatever the limit
  const contains = compileRules([{ name: 'h', when: { header: { name: 'X-Cam', contains: 'needle' } }, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  assert.equal(contains.evaluate(data, NOW).matched.length, 1);
});

test('addresses share one budget per condition', T, async () => {
  const to = Array.from({ length: 400 }, (_, i) => `user${i}@d${i}.example`).join(', ') + ', target@cam.example';
  const data = await dataAt(eml(basicHeaders({ To: to })), 'headers');
  const when = { to: { address: { regex: '^target@' } } };
  assert.equal(compileRules([{ name: 'a', when, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] }).evaluate(data, NOW).matched.length, 0);
  assert.equal(compileRules([{ name: 'a', when, publish: [] }] as RuleConfig[], { trustedAuthservIds: [], regexInputLimit: 64 * 1024 }).evaluate(data, NOW).matched.length, 1);
});

test('the body regex sees the start of the body text only', T, async () => {
  const raw = eml(basicHeaders(), 'Motion on cam2\r\n' + 'filler line\r\n'.repeat(2000) + 'Motion on cam9\r\n');
  const data = await dataAt(raw, 'full');
  const rs = compileRules([{ name: 'b', when: { body: { regex: 'Motion on (?<cam>cam\\d)' } }, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  assert.deepEqual(rs.evaluate(data, NOW).matched[0]?.captures, { cam: 'cam2' });
  const late = compileRules([{ name: 'b', when: { body: { regex: 'on cam9' } }, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  assert.equal(late.evaluate(data, NOW).matched.length, 0, 'past the first 4 KiB');
});

test('config: regex_input_limit is a size, 4KiB by default, between 64 bytes and 1MiB', T, () => {
  assert.equal(parse(minimalYaml()).config.regex_input_limit, 4096);
  assert.equal(parse(minimalYaml('', 'regex_input_limit: 16KiB\n')).config.regex_input_limit, 16 * 1024);
  assert.match(parseError(minimalYaml('', 'regex_input_limit: 10\n')).message, /regex_input_limit must be at least 64/);
  assert.match(parseError(minimalYaml('', 'regex_input_limit: 2MiB\n')).message, /regex_input_limit must be at most 1MiB/);
});

test('two overlapping unbounded repeats where a match may start anywhere are refused at load (cubic backtracking)', T, () => {
  const bad = ['(?<cam>\\w+)\\s*(?<zone>\\w+) motion', '(?<a>.*) (?<b>.*) x', '.*.*', '\\w+\\w+', '(?:(\\w+)\\s*(\\w+))'];
  for (const re of bad) assert.match(validateRegex(re) ?? '', /two unbounded repeats in a row/, re);
  const good = [
    '(?<camera>\\w+) motion', '^ALARM: (?<event>.+?) (?<camera>Camera \\d+)$', '^(?<a>.*) (?<b>.*) x', '.*motion.*detected',
    '(?<cam>\\S+) (?<ev>\\S+) on (?<zone>.+)$', '\\w+\\s+\\w+', 'Camera (?<n>\\d+).*zone (?<z>\\d+)', '(?:foo (\\w+)\\s*(\\w+))',
    '^From: (?<n>.*) <(?<a>.*)>$', 'Volume (?<volume>\\d+) .*(?<condition>degraded|crashed)', '(\\d{1,3}\\.){3}\\d{1,3}',
  ];
  for (const re of good) assert.equal(validateRegex(re), null, re);
});

test('the evaluation cache is stamped when the evaluation ends, so a slow evaluation is reused, not run again', T, async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const rs = compileRules([{ name: 'r', when: { subject: { contains: 'motion' } }, publish: [] }] as RuleConfig[], { trustedAuthservIds: [] });
  const data = await dataAt(eml(basicHeaders()), 'headers');
  const headers = data.headers;
  // every read of the headers takes 600 ms of (mocked) time: the cache key reads them once, the evaluation once
  Object.defineProperty(data, 'headers', { get: () => { t.mock.timers.tick(600); return headers; } });
  const first = rs.evaluate(data);
  assert.equal(Date.now(), 1_001_200);
  const second = rs.evaluate(data); // 600 ms after the first evaluation ended, 1,200 ms after it started
  assert.equal(second, first, 'reused: stamped after evaluating');
  t.mock.timers.tick(1000);
  assert.notEqual(rs.evaluate(data), first, 'a second later it is evaluated again');
});
