// Checks a mailbox's `schedule:` cron expression as node-cron reads it, without loading node-cron (only the daemon's scheduler needs it, not `once` or `check`).
//
// Accepted (what node-cron 4 accepts; test/unit/cron-expression.test.ts compares the two over generated expressions):
// 5 fields (minute hour day-of-month month week-day) or 6 with seconds first, separated by spaces, or a nickname
// (@yearly @annually @monthly @weekly @daily @midnight @hourly). A field is a comma list of items: a number, `*`, a
// range `a-b` (a > b wraps around), a step `*/n` or `a-b/n`; month and week-day names (jan, january, mon, monday...,
// any case) stand for their numbers; `?` alone means `*` in the two day fields. Day of month also takes L (last day),
// L-n (n days before it, 1-30), nW and LW (nearest weekday); week day 0-7 (0 and 7 are Sunday), n#k (k-th n of the
// month, 1-5) and nL (last n of the month).

export type CronField = 'second' | 'minute' | 'hour' | 'dayOfMonth' | 'month' | 'dayOfWeek';

export interface CronCheck {
  valid: boolean;
  /** One entry per problem: the whole expression ('expression') or each bad field. */
  errors: Array<{ field: CronField | 'expression'; message: string }>;
}

interface FieldSpec {
  field: CronField;
  label: string;
  min: number;
  /** Largest value an item may have. */
  max: number;
  /** Largest value of the field's cycle: what `*` stands for, and where a wrapping range turns around. */
  cycleMax: number;
  /** What the error message lists as allowed. */
  allowed: string;
  /** Names replaced by numbers before anything else is read: full names first, then short ones. */
  names?: { list: readonly string[]; first: number };
  /** Whether `?` alone means `*`. */
  question?: boolean;
  /** Items other than plain numbers that the field accepts (given the item after upper-casing). */
  special?: (item: string) => boolean;
}

const NICKNAMES: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
};

const MONTH_NAMES = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
/** Full names, then their three-letter forms: the order in which they are replaced. */
const withShortNames = (full: string[]) => [...full, ...full.map((n) => n.slice(0, 3))];

/** Day-of-month items besides numbers: L, LW, nW (1-31), L-n (1-30). */
function specialDayOfMonth(item: string): boolean {
  if (item === 'L' || item === 'LW') return true;
  const weekday = /^(\d{1,2})W$/.exec(item);
  if (weekday) return inRange(Number(weekday[1]), 1, 31);
  const beforeLast = /^L-(\d{1,2})$/.exec(item);
  return beforeLast !== null && inRange(Number(beforeLast[1]), 1, 30);
}

/** Week-day items besides numbers: n#k (k-th n of the month) and nL (last n of the month), n 0-7. */
const specialDayOfWeek = (item: string) => /^[0-7](#[1-5]|L)$/.test(item);

const FIELDS: readonly FieldSpec[] = [
  { field: 'second', label: 'second', min: 0, max: 59, cycleMax: 59, allowed: '0-59' },
  { field: 'minute', label: 'minute', min: 0, max: 59, cycleMax: 59, allowed: '0-59' },
  { field: 'hour', label: 'hour', min: 0, max: 23, cycleMax: 23, allowed: '0-23' },
  { field: 'dayOfMonth', label: 'day of month', min: 1, max: 31, cycleMax: 31, allowed: '1-31, L, L-1 to L-30, 1W-31W, LW', question: true, special: specialDayOfMonth },
  { field: 'month', label: 'month', min: 1, max: 12, cycleMax: 12, allowed: '1-12, jan-dec', names: { list: withShortNames(MONTH_NAMES), first: 1 } },
  {
    field: 'dayOfWeek', label: 'week day', min: 0, max: 7, cycleMax: 6, allowed: '0-7 (0 and 7 are Sunday), sun-sat, n#1 to n#5, nL',
    question: true, names: { list: withShortNames(DAY_NAMES), first: 0 }, special: specialDayOfWeek,
  },
];

/** Days in each month (February with its leap day). */
const MONTH_DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const inRange = (n: number, min: number, max: number) => n >= min && n <= max;

/**
 * The numbers a range item stands for, or undefined if one of them is outside the field. `a-b/s` counts from a up
 * to b in steps of s; with a > b it counts on past the cycle's end and starts again at its beginning.
 */
function rangeValues(a: number, b: number, step: number, spec: FieldSpec): number[] | undefined {
  if (a <= b) {
    const last = a + Math.floor((b - a) / step) * step;
    if (a < spec.min || last > spec.max) return undefined;
    const out: number[] = [];
    for (let v = a; v <= b; v += step) out.push(v);
    return out;
  }
  const cycle = spec.cycleMax - spec.min + 1;
  const length = (((b - a) % cycle) + cycle) % cycle;
  const out: number[] = [];
  for (let k = 0; k <= length; k += step) {
    const v = a + k > spec.cycleMax ? a + k - cycle : a + k;
    if (!inRange(v, spec.min, spec.max)) return undefined;
    out.push(v);
  }
  return out;
}

/**
 * Reads one field. Returns the numbers it lists (an item like L stands for no fixed day: `fixed` is false then), or
 * undefined if an item is not valid.
 */
function readField(text: string, spec: FieldSpec): { values: number[]; fixed: boolean } | undefined {
  let s = spec.question && text === '?' ? '*' : text;
  if (spec.names) for (const [i, name] of spec.names.list.entries()) s = s.replace(new RegExp(name, 'gi'), String((i % (spec.names.list.length / 2)) + spec.names.first));
  const values: number[] = [];
  let fixed = true;
  for (const raw of s.split(',')) {
    // `*` (its first one, in an item that has more it stays wrong) is the field's whole cycle.
    const item = raw.replace('*', `${spec.min}-${spec.cycleMax}`);
    const range = /^(\d+)-(\d+)(?:\/(\d+))?$/.exec(item);
    if (range) {
      const step = range[3] === undefined ? 1 : Number.parseInt(range[3], 10);
      const list = step >= 1 ? rangeValues(Number.parseInt(range[1]!, 10), Number.parseInt(range[2]!, 10), step, spec) : undefined;
      if (!list) return undefined;
      values.push(...list);
    } else if (/^\d+$/.test(item)) {
      const n = Number.parseInt(item, 10);
      if (!inRange(n, spec.min, spec.max)) return undefined;
      values.push(n);
    } else if (spec.special?.(item.toUpperCase())) {
      fixed = false;
    } else {
      return undefined;
    }
  }
  return { values, fixed };
}

/** Whether a cron expression is valid, and what is wrong with it if not. */
export function checkCronExpression(expression: string): CronCheck {
  const text = NICKNAMES[expression.trim().toLowerCase()] ?? expression;
  if (text === '') return { valid: false, errors: [{ field: 'expression', message: 'the expression is empty' }] };
  const bad = /[^a-zA-Z0-9 *\/,#?-]/.exec(text);
  if (bad) return { valid: false, errors: [{ field: 'expression', message: `${JSON.stringify(bad[0])} is not allowed (only digits, names, spaces and - * / , # ?)` }] };
  const given = text.trim().split(/ +/);
  if (given.length !== 5 && given.length !== 6) return { valid: false, errors: [{ field: 'expression', message: `expected 5 or 6 fields but got ${given.length}` }] };
  const fields = given.length === 5 ? ['0', ...given] : given;
  const errors: CronCheck['errors'] = [];
  const read = FIELDS.map((spec, i) => {
    const raw = fields[i]!;
    // A W must be part of an nW or LW item (a misplaced one is not read as anything else).
    const misplacedW = spec.field === 'dayOfMonth' && raw.split(',').some((item) => /w/i.test(item) && !/^(\d{1,2}|L)W$/i.test(item));
    const result = misplacedW ? undefined : readField(raw, spec);
    if (!result) errors.push({ field: spec.field, message: `${raw} is not a valid ${spec.label} (${spec.allowed})` });
    return result;
  });
  if (errors.length > 0) return { valid: false, errors };
  const days = read[3]!;
  const months = read[4]!;
  if (days.fixed && !months.values.some((m) => days.values.some((d) => d <= MONTH_DAYS[m]!))) {
    return { valid: false, errors: [{ field: 'dayOfMonth', message: `day of month ${fields[3]} never occurs in month ${fields[4]}` }] };
  }
  return { valid: true, errors: [] };
}
