// Tests of the shared duration/size parsers (src/units.ts) that config keys and rule options use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSize, UnitParseError } from '../../src/units.js';

test('parseDuration accepts units, compounds, decimals and plain milliseconds', { timeout: 5000 }, () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('1w'), 604_800_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1h 30m'), 5_400_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('10min'), 600_000);
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration('2H'), 7_200_000);
});

test('parseDuration rejects garbage with a readable error', { timeout: 5000 }, () => {
  for (const bad of ['', 'abc', '5x', '-1s', '1h-', 'h', '5 m s', NaN, -5, Infinity]) {
    assert.throws(() => parseDuration(bad as string | number), UnitParseError, String(bad));
  }
});

test('parseSize is 1024-based for K/M/G with or without B/iB', { timeout: 5000 }, () => {
  assert.equal(parseSize(512), 512);
  assert.equal(parseSize('512'), 512);
  assert.equal(parseSize('512B'), 512);
  assert.equal(parseSize('1KB'), 1024);
  assert.equal(parseSize('1KiB'), 1024);
  assert.equal(parseSize('1k'), 1024);
  assert.equal(parseSize('25MB'), 25 * 1024 * 1024);
  assert.equal(parseSize('1GiB'), 1024 ** 3);
  assert.equal(parseSize('1.5KB'), 1536);
  assert.equal(parseSize(' 2 MB '), 2 * 1024 * 1024);
});

test('parseSize rejects garbage', { timeout: 5000 }, () => {
  for (const bad of ['', 'MB', '5TB', '5 M B', '-1KB', 'ten', -1, NaN]) {
    assert.throws(() => parseSize(bad as string | number), UnitParseError, String(bad));
  }
});
