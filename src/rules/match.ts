// Compiles one string match object (is/contains/glob/regex/one_of, case switch) into a fast predicate that also returns captures.
import { compileGlob } from './glob.js';
import { compileRegex, REGEX_INPUT_LIMIT } from './regex.js';

export interface MatchSpec {
  is?: string;
  contains?: string;
  glob?: string;
  regex?: string;
  one_of?: string[];
  case_sensitive?: boolean;
}

export interface MatchOutcome { ok: boolean; captures?: Record<string, string> }
export type Matcher = (value: string) => MatchOutcome;

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

/** Compile a match object; every given match type must hold (AND). Regexes see at most REGEX_INPUT_LIMIT characters. */
export function compileMatch(m: MatchSpec): Matcher {
  const cs = m.case_sensitive === true;
  const fold = (s: string) => (cs ? s : s.toLowerCase());
  const tests: ((v: string, folded: string) => MatchOutcome)[] = [];
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
    tests.push((v) => {
      const r = re.exec(v.length > REGEX_INPUT_LIMIT ? v.slice(0, REGEX_INPUT_LIMIT) : v);
      if (!r) return FAIL;
      if (!r.groups) return PASS;
      const captures: Record<string, string> = {};
      for (const [k, val] of Object.entries(r.groups)) if (val !== undefined) captures[k] = val;
      return { ok: true, captures };
    });
  }
  return (value: string) => {
    const folded = cs ? value : value.toLowerCase();
    let captures: Record<string, string> | undefined;
    for (const t of tests) {
      const r = t(value, folded);
      if (!r.ok) return FAIL;
      if (r.captures) captures = { ...(captures ?? {}), ...r.captures };
    }
    return captures ? { ok: true, captures } : PASS;
  };
}
