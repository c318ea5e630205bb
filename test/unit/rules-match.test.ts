// Tests of the string match types (is, contains, glob, regex, one_of), the case switch, and the safe glob matcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMatch } from '../../src/rules/match.js';
import { compileGlob, validateGlob } from '../../src/rules/glob.js';
import { namedGroups, validateRegex } from '../../src/rules/regex.js';

test('is / contains / one_of are case-insensitive by default and exact with case_sensitive', { timeout: 5000 }, () => {
  assert.equal(compileMatch({ is: 'Alarm' })('ALARM').ok, true);
  assert.equal(compileMatch({ is: 'Alarm' })('ALARM!').ok, false);
  assert.equal(compileMatch({ is: 'Alarm', case_sensitive: true })('ALARM').ok, false);
  assert.equal(compileMatch({ is: 'Alarm', case_sensitive: true })('Alarm').ok, true);
  assert.equal(compileMatch({ contains: 'zone 3' })('Motion in ZONE 3 now').ok, true);
  assert.equal(compileMatch({ contains: 'zone 3', case_sensitive: true })('Motion in ZONE 3 now').ok, false);
  assert.equal(compileMatch({ contains: 'zone 4' })('Motion in ZONE 3 now').ok, false);
  assert.equal(compileMatch({ one_of: ['on', 'off'] })('OFF').ok, true);
  assert.equal(compileMatch({ one_of: ['on', 'off'] })('offline').ok, false);
  assert.equal(compileMatch({ one_of: ['on', 'off'], case_sensitive: true })('OFF').ok, false);
});

test('several match types in one object are ANDed', { timeout: 5000 }, () => {
  const m = compileMatch({ contains: 'alarm', glob: '*3' });
  assert.equal(m('ALARM camera 3').ok, true);
  assert.equal(m('ALARM camera 4').ok, false);
  assert.equal(m('motion camera 3').ok, false);
});

test('glob: * and ? and escapes, whole-value, case switch', { timeout: 5000 }, () => {
  const g = (p: string, v: string, cs = false) => compileGlob(p, cs)(v);
  assert.equal(g('*@nvr.local>', '<abc@NVR.local>'), true);
  assert.equal(g('*@nvr.local>', '<abc@nvr.local>x'), false);
  assert.equal(g('cam?', 'cam1'), true);
  assert.equal(g('cam?', 'cam12'), false);
  assert.equal(g('a*b*c', 'aXXbYYc'), true);
  assert.equal(g('a*b*c', 'aXXcYYb'), false);
  assert.equal(g('\\*lit', '*lit'), true);
  assert.equal(g('\\*lit', 'xlit'), false);
  assert.equal(g('\\?', '?'), true);
  assert.equal(g('', ''), true);
  assert.equal(g('*', ''), true);
  assert.equal(g('A*', 'abc', true), false);
  assert.equal(g('a*', 'abc', true), true);
  assert.equal(g('*.jpg', 'snap.JPG'), true);
  assert.notEqual(validateGlob('bad\\'), null);
  assert.equal(validateGlob('ok\\\\'), null);
});

test('glob matching stays fast on hostile input', { timeout: 5000 }, () => {
  const value = 'a'.repeat(50_000);
  const t0 = Date.now();
  assert.equal(compileGlob('*a*a*a*a*a*a*a*b')(value), false);
  assert.ok(Date.now() - t0 < 2000);
});

test('regex: search semantics, named captures, case switch', { timeout: 5000 }, () => {
  const m = compileMatch({ regex: '^ALARM: (?<event>.+?) (?<camera>Camera \\d+)$' });
  assert.deepEqual(m('ALARM: Motion detected Camera 12'), { ok: true, captures: { event: 'Motion detected', camera: 'Camera 12' } });
  assert.deepEqual(m('alarm: x camera 1'), { ok: true, captures: { event: 'x', camera: 'camera 1' } });
  assert.equal(compileMatch({ regex: '^ALARM', case_sensitive: true })('alarm').ok, false);
  assert.equal(compileMatch({ regex: 'zone' })('the Zone 3').ok, true);
  // unmatched optional groups are left out
  assert.deepEqual(compileMatch({ regex: '(?<a>x)?(?<b>y)' })('y'), { ok: true, captures: { b: 'y' } });
  assert.deepEqual(namedGroups('(?<a>x)[(?<no>)]\\(?<no2>(?<b>y)'), ['a', 'b']);
  assert.equal(validateRegex('(?<dup>a)(?<dup>b)') !== null, true);
});

test('regex input is capped so a long hostile value is bounded', { timeout: 5000 }, () => {
  const m = compileMatch({ regex: 'needle' });
  assert.equal(m('x'.repeat(5000) + 'needle').ok, false); // beyond the 4 KiB default regex_input_limit
  assert.equal(m('x'.repeat(1000) + 'needle').ok, true);
});
