// The bench table: value formatting, ratios, and target checks (strict and non-strict), from given figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTargets, formatRatio, formatValue, isMet, markdownTable, type Row } from '../../scripts/bench/report.js';

test('values print with readable units', () => {
  assert.equal(formatValue(88, 'B'), '88 B');
  assert.equal(formatValue(9_999, 'B'), '9,999 B');
  assert.equal(formatValue(306_748, 'B'), '306.7 kB');
  assert.equal(formatValue(225_575_098, 'B'), '225.58 MB');
  assert.equal(formatValue(1_234, 'ms'), '1,234 ms');
  assert.equal(formatValue(61_000, 'ms'), '61.0 s');
  assert.equal(formatValue(102_400, 'KiB'), '100.0 MiB');
  assert.equal(formatValue(590.4, 'KiB'), '590 KiB');
  assert.equal(formatValue(1.01234, 'x'), '1.0123 ×');
  assert.equal(formatValue(null, 'B'), '–');
});

test('ratio is fetchmail ÷ pop2mqtt, blank when a side is missing or zero', () => {
  assert.equal(formatRatio(100, 7_000), '70.0×');
  assert.equal(formatRatio(100, 25_000), '250×');
  assert.equal(formatRatio(100, 150), '1.50×');
  assert.equal(formatRatio(200, 50), '0.250×');
  assert.equal(formatRatio(0, 50), '');
  assert.equal(formatRatio(10, null), '');
});

test('targets: <= by default, < when strict; a missing value never meets a target', () => {
  assert.equal(isMet({ max: 100, text: '' }, 100), true);
  assert.equal(isMet({ max: 100, text: '' }, 101), false);
  assert.equal(isMet({ max: 1500, strict: true, text: '' }, 1500), false);
  assert.equal(isMet({ max: 1500, strict: true, text: '' }, 1499), true);
  assert.equal(isMet({ max: 1, text: '' }, null), false);
  assert.equal(isMet({ max: 1, text: '' }, NaN), false);
});

test('the table prints each workload once, flags missed targets and omits ratios where asked', () => {
  const rows: Row[] = [
    { workload: 'W1', metric: 'bytes', unit: 'B', pop2mqtt: 3_000_000, fetchmail: 225_000_000 },
    { workload: 'W1', metric: 'ratio', unit: 'x', pop2mqtt: 1.02, fetchmail: 75, target: { max: 1.01, text: '≤ 1.01' } },
    { workload: 'W3', metric: 'latency', unit: 'ms', pop2mqtt: 900, fetchmail: 50, noRatio: true },
  ];
  const md = markdownTable(rows).split('\n');
  assert.equal(md.length, 2 + rows.length);
  assert.match(md[2]!, /^\| W1 \| bytes \| 3\.00 MB \| 225\.00 MB \| 75\.0× \|/);
  assert.match(md[3]!, /^\|  \| ratio \| 1\.0200 × \| 75\.0000 × \|  \| ≤ 1\.01 \| \*\*no\*\* \|$/);
  assert.match(md[4]!, /^\| W3 \| latency \| 900 ms \| 50 ms \|  \|  \|  \|$/);
  assert.deepEqual(checkTargets(rows), [{ workload: 'W1', metric: 'ratio', target: '≤ 1.01', value: 1.02, met: false }]);
});
