// Proves that src/config/cron-expression.ts accepts exactly the cron expressions node-cron accepts and flags the same fields, over every item of a grammar in each field and many random expressions, and that its messages name the field and what it allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateDetailed } from 'node-cron';
import { checkCronExpression } from '../../src/config/cron-expression.js';
import { prng } from '../support/prng.js';

/** What must agree: valid or not, and which parts are wrong ('expression' or the field names), in order. */
function verdict(v: { valid: boolean; errors: Array<{ field: string }> }): string {
  return v.valid ? 'valid' : `invalid: ${v.errors.map((e) => e.field).join(',')}`;
}

function compare(expressions: Iterable<string>): { checked: number; valid: number; bad: string[] } {
  const bad: string[] = [];
  let checked = 0;
  let valid = 0;
  for (const e of expressions) {
    const theirs = verdict(validateDetailed(e));
    const ours = verdict(checkCronExpression(e));
    checked++;
    if (ours === 'valid') valid++;
    if (ours !== theirs && bad.length < 20) bad.push(`${JSON.stringify(e)}: node-cron ${theirs}, ours ${ours}`);
  }
  return { checked, valid, bad };
}

/** Single items: numbers at and around every bound, names, the special day forms, and malformed ones. */
const NUMBERS = ['0', '1', '00', '01', '5', '6', '7', '8', '12', '13', '23', '24', '28', '29', '30', '31', '32', '59', '60', '61', '99', '007', '100'];
const NAMES = ['jan', 'JAN', 'january', 'January', 'feb', 'mar', 'may', 'jun', 'june', 'jul', 'sep', 'sept', 'dec', 'december', 'janfeb', '1jan', 'jan1',
  'sun', 'SUN', 'sunday', 'mon', 'Monday', 'tue', 'tues', 'wed', 'thu', 'fri', 'friday', 'sat', 'saturday', 'monfri', 'xyz', 'a'];
const SPECIAL = ['L', 'l', 'LW', 'lw', 'Lw', 'W', 'w', '1W', '1w', '01W', '0W', '15W', '31W', '32W', '99W', 'W1', 'L-1', 'l-1', 'L-0', 'L-15', 'L-30',
  'L-31', 'L-05', 'L-100', 'L1', '5L', '5l', '7L', '8L', 'LL', '1#1', '5#2', '7#5', '0#5', '8#1', '1#0', '1#6', '1#', '#1', 'mon#2', 'friL', 'sunL', 'L#1', '1W#1', '5-10W'];
const STARS = ['*', '?', '**', '*/1', '*/0', '*/2', '*/5', '*/7', '*/60', '*/100', '*5', '5*', '*/*', '?/2', '*-5', '*/a'];
const RANGES = ['0-5', '1-5', '5-1', '0-59', '0-60', '1-31', '1-32', '0-31', '1-12', '1-13', '0-12', '0-6', '0-7', '1-7', '0-8', '6-0', '7-0', '7-1', '8-1',
  '9-2', '10-5', '100-5', '70-10', '59-0', '23-0', '31-1', '12-1', '13-1', '1-5/2', '1-5/0', '1-5/1', '5-1/2', '0-59/15', '50-10/7', '1-31/10', '1-1',
  '5-5/3', 'jan-mar', 'mar-jan', 'nov-feb/2', 'mon-fri', 'fri-mon', 'sun-sat', '1-', '-1', '1--2', '1-2-3', '1-5/', '/5', '1/5', '5/1', 'L-W'];
const ITEMS = [...NUMBERS, ...NAMES, ...SPECIAL, ...STARS, ...RANGES, ''];

test('every item of the grammar, alone and in lists, in each of the six fields: same verdict as node-cron', () => {
  const expressions: string[] = [];
  const base = ['0', '*', '*', '*', '*', '*'];
  for (let field = 0; field < 6; field++) {
    for (const item of ITEMS) {
      for (const value of [item, `${item},5`, `1,${item}`, `${item},${item}`]) {
        const fields = [...base];
        fields[field] = value;
        expressions.push(fields.join(' '));
        if (field > 0) expressions.push(fields.slice(1).join(' '));
      }
    }
  }
  const r = compare(expressions);
  assert.deepEqual(r.bad, []);
  assert.ok(r.valid > 500 && r.checked - r.valid > 500, `both verdicts are covered (${r.valid} valid of ${r.checked})`);
});

test('days that never occur in the months given: same verdict as node-cron', () => {
  const expressions: string[] = [];
  for (const day of ['29', '30', '31', '30,31', '31,1', '1-31', '30-31', 'L', 'LW', '15W', 'L-1', '31,L', '*/30', '?'])
    for (const month of ['1', '2', '4', '2,4', '4,6,9,11', 'feb', 'feb,apr', 'apr-jun', '*', '2,3', '11-2'])
      expressions.push(`0 0 ${day} ${month} *`);
  const r = compare(expressions);
  assert.deepEqual(r.bad, []);
  assert.ok(r.checked - r.valid >= 10, 'impossible dates are among them');
});

test('whole expressions: nicknames, spacing, field counts, characters', () => {
  const r = compare([
    '@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', ' @Daily ', '@DAILY', '@every', '@reboot', '@daily 5',
    '', ' ', '     ', '* * * *', '* * * * *', '* * * * * *', '* * * * * * *', '  * *  * * *  ', '*\t* * * *', '* * * * *\n', '*,* * * * *',
    '*/5 * * * *', '0 */5 * * * *', '1 2 3 4 5', '1 2 3 4 5 6', '* * * * Mon-Fri', '* * * JAN-dec *', '0 0 L * *', '0 0 ? * 1#2', '0 0 * * 5L',
    '* * * * * ?', '? * * * *', 'x * * * *', '* * * * * $', '* * * * é', '${PASSWORD} * * * *', '*;* * * * *', '* * * * *,', ',* * * * *',
  ]);
  assert.deepEqual(r.bad, []);
});

test('random expressions built from the grammar (150,000, seeded): same verdict as node-cron', () => {
  const rand = prng(14);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const item = (): string => {
    const x = rand();
    if (x < 0.35) return String(Math.floor(rand() * (rand() < 0.8 ? 62 : 400)));
    if (x < 0.5) return pick(RANGES);
    if (x < 0.65) return `${Math.floor(rand() * 65)}-${Math.floor(rand() * 65)}${rand() < 0.4 ? `/${Math.floor(rand() * 12)}` : ''}`;
    if (x < 0.75) return pick(STARS);
    if (x < 0.87) return pick(SPECIAL);
    if (x < 0.97) return pick(NAMES);
    return pick(['', '-', '/', '#', '?', 'x', ' ', ',']);
  };
  const field = (): string => Array.from({ length: 1 + Math.floor(rand() * rand() * 4) }, item).join(',');
  const expressions = function* () {
    for (let i = 0; i < 150_000; i++) {
      const n = rand() < 0.9 ? 5 + Math.floor(rand() * 2) : 3 + Math.floor(rand() * 5);
      // Mostly one unusual field among plain ones, so that valid expressions stay common.
      const fields = Array.from({ length: n }, () => (rand() < 0.7 ? pick(['*', '0', '1', '*/5', '1-5']) : field()));
      yield fields.join(rand() < 0.9 ? ' ' : '  ');
    }
  };
  const r = compare(expressions());
  assert.deepEqual(r.bad, []);
  assert.ok(r.valid > 15_000 && r.checked - r.valid > 15_000, `both verdicts are common (${r.valid} valid of ${r.checked})`);
});

test('messages name the field, the value and what the field allows; the whole-expression ones say what is wrong', () => {
  const one = (e: string) => {
    const r = checkCronExpression(e);
    assert.equal(r.valid, false, e);
    return r.errors.map((x) => x.message);
  };
  assert.deepEqual(one('61 * * * *'), ['61 is not a valid minute (0-59)']);
  assert.deepEqual(one('* 24 32 * *'), ['24 is not a valid hour (0-23)', '32 is not a valid day of month (1-31, L, L-1 to L-30, 1W-31W, LW)']);
  assert.deepEqual(one('* * * 13 mon#6'), ['13 is not a valid month (1-12, jan-dec)', 'mon#6 is not a valid week day (0-7 (0 and 7 are Sunday), sun-sat, n#1 to n#5, nL)']);
  assert.deepEqual(one('60 * * * * *'), ['60 is not a valid second (0-59)']);
  assert.deepEqual(one('0 0 30 feb *'), ['day of month 30 never occurs in month feb']);
  assert.deepEqual(one('* * * *'), ['expected 5 or 6 fields but got 4']);
  assert.deepEqual(one('@every 5m'), ['"@" is not allowed (only digits, names, spaces and - * / , # ?)']);
  assert.deepEqual(one(''), ['the expression is empty']);
  assert.equal(checkCronExpression('*/5 * * * *').valid, true);
});
