// Compiles one string match object (is/contains/glob/regex/one_of, case switch) into a fast predicate that also returns captures.
import { compileGlob } from './glob.js';
import { compileRegex, DEFAULT_REGEX_INPUT_LIMIT } from './regex.js';

export interface MatchSpec {
  is?: string;
  contains?: string;
  glob?: string;
  regex?: string;
  one_of?: string[];
  case_sensitive?: boolean;
}

export interface MatchOutcome { ok: boolean; captures?: Record<string, string> }
/**
 * How many more characters the regexes of one condition may read in this evaluation. One budget is shared by every
 * value the condition examines (each header instance, each address and its parts), so that many values cannot add
 * up: a regex's backtracking cost is bounded by the budget, whatever the message.
 */
export interface RegexBudget { left: number }
/** Match one value; regexes read at most `budget.left` characters of it (and spend them), or the compile-time cap. */
export type Matcher = (value: string, budget?: RegexBudget) => MatchOutcome;

const FAIL: MatchOutcome = { ok: false };
const PASS: MatchOutcome = { ok: true };

/** True when the object carries at least one match type. */
export function hasMatchKeys(m: MatchSpec): boolean {
  return m.is !== undefined || m.contains !== undefined || m.glob !== undefined || m.regex !== undefined || m.one_of !== undefined;
}

/** A short description of the match for traces, e.g. `contains "x"`. */
export function describeMatch(m: MatchSpec): string {
  const parts: string[] = [];
  if (m.is !== undefined) parts.push(`is ${JSON.stringify(m.is)}`);
  if (m.contains !== undefined) parts.push(`contains ${JSON.stringify(m.contains)}`);
  if (m.glob !== undefined) parts.push(`glob ${JSON.stringify(m.glob)}`);
  if (m.regex !== undefined) parts.push(`regex /${m.regex}/`);
  if (m.one_of !== undefined) parts.push(`one_of ${JSON.stringify(m.one_of)}`);
  if (m.case_sensitive) parts.push('case-sensitive');
  return parts.join(', ');
}

/**
 * Compile a match object; every given match type must hold (AND). A regex sees at most `regexInputLimit` characters
 * of a value (its start), and no more than what is left of the budget when one is given: once the budget is spent a
 * regex matches nothing. is/contains/one_of/glob are linear and see the whole value.
 */
export function compileMatch(m: MatchSpec, regexInputLimit = DEFAULT_REGEX_INPUT_LIMIT): Matcher {
  const cs = m.case_sensitive === true;
  const fold = (s: string) => (cs ? s : s.toLowerCase());
  const tests: ((v: string, folded: string, budget: RegexBudget | undefined) => MatchOutcome)[] = [];
  if (m.is !== undefined) {
    const want = fold(m.is);
    tests.push((_v, f) => (f === want ? PASS : FAIL));
  }
  if (m.contains !== undefined) {
    const want = fold(m.contains);
    tests.push((_v, f) => (f.includes(want) ? PASS : FAIL));
  }
  if (m.one_of !== undefined) {
    const set = new Set(m.one_of.map(fold));
    tests.push((_v, f) => (set.has(f) ? PASS : FAIL));
  }
  if (m.glob !== undefined) {
    const g = compileGlob(m.glob, cs);
    tests.push((v) => (g(v) ? PASS : FAIL));
  }
  if (m.regex !== undefined) {
    const re = compileRegex(m.regex, cs);
    tests.push((v, _f, budget) => {
      const cap = budget ? Math.min(regexInputLimit, budget.left) : regexInputLimit;
      if (cap <= 0 && v.length > 0) return FAIL;
      const seen = v.length > cap ? v.slice(0, cap) : v;
      if (budget) budget.left -= seen.length;
      const r = re.exec(seen);
      if (!r) return FAIL;
      if (!r.groups) return PASS;
      const captures: Record<string, string> = {};
      const groups = r.groups;
      for (const k in groups) if (groups[k] !== undefined) captures[k] = groups[k];
      return { ok: true, captures };
    });
  }
  // is/contains/one_of compare the folded value; glob and regex fold themselves (flags), so they need no copy.
  const needsFolded = !cs && (m.is !== undefined || m.contains !== undefined || m.one_of !== undefined);
  return (value: string, budget?: RegexBudget) => {
    const folded = needsFolded ? value.toLowerCase() : value;
    let captures: Record<string, string> | undefined;
    for (let i = 0; i < tests.length; i++) {
      const r = tests[i]!(value, folded, budget);
      if (!r.ok) return FAIL;
      if (r.captures) captures = captures ? { ...captures, ...r.captures } : r.captures;
    }
    return captures ? { ok: true, captures } : PASS;
  };
}
