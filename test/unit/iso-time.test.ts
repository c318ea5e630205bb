// Tests of isoTime (src/iso-time.ts): the same text as Date.prototype.toISOString for every time it may be given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from '../../src/iso-time.js';

test('isoTime matches toISOString across years, months, days and milliseconds', { timeout: 5000 }, () => {
  const times = [0, 1, 9, 10, 99, 100, 999, Date.UTC(2026, 11, 4, 10, 5, 7, 3), Date.UTC(2000, 1, 29, 23, 59, 59, 999),
    Date.UTC(1969, 11, 31, 23, 59, 59, 999), Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(100, 0, 1), -62167219200000];
  for (let t = Date.UTC(1970, 0, 1); t < Date.UTC(2100, 0, 1); t += 86_400_000 * 37 + 3_723_456) times.push(t);
  for (const t of times) {
    assert.equal(isoTime(t), new Date(t).toISOString(), `time ${t}`);
    assert.equal(isoTime(new Date(t)), new Date(t).toISOString(), `Date ${t}`);
  }
});

test('isoTime leaves extended years and invalid dates to toISOString', { timeout: 5000 }, () => {
  for (const t of [Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1), 8.64e15, -8.64e15]) assert.equal(isoTime(t), new Date(t).toISOString());
  assert.throws(() => isoTime(NaN), RangeError);
  assert.throws(() => isoTime(new Date('not a date')), RangeError);
});

test('isoTime without an argument is the current time', { timeout: 5000 }, () => {
  const before = Date.now();
  const t = Date.parse(isoTime());
  assert.ok(t >= before && t <= Date.now());
});

test('no source file but iso-time.ts calls toISOString (the first call makes ICU time-zone data resident)', { timeout: 10_000 }, async () => {
  const { readdir, readFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const src = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../../src');
  const files = (await readdir(src, { recursive: true })).filter((f) => f.endsWith('.ts') && path.basename(f) !== 'iso-time.ts');
  assert.ok(files.length > 50);
  const callers: string[] = [];
  for (const f of files) if (/\.toISOString\(/.test(await readFile(path.join(src, f), 'utf8'))) callers.push(f);
  assert.deepEqual(callers, [], 'use isoTime() from src/iso-time.ts');
});
