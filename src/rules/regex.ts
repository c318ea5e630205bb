// Checks user regexes at load time (syntax, nested unbounded quantifiers) and compiles them with the rule language's case switch.

/**
 * Default for `regex_input_limit`: the most characters one regex condition reads per evaluation (a value's start;
 * shared across all the values it examines). A quadratic pattern like `(?<camera>\w+) motion` costs about 16 ms on
 * 4 KiB of word characters and 2.4 s on 64 KiB, so the cap, not a timeout, is what bounds a rule evaluation.
 */
export const DEFAULT_REGEX_INPUT_LIMIT = 4 * 1024;

/** Return what is wrong with the pattern (syntax or catastrophic-backtracking shape), or null when it is acceptable. */
export function validateRegex(pattern: string): string | null {
  try {
    new RegExp(pattern);
  } catch (e) {
    return `invalid regex: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  if (hasNestedUnboundedQuantifier(pattern)) {
    return 'regex has a repeated group that itself contains an unbounded repeat (like (a+)+ or (\\w*)*); it can backtrack catastrophically on hostile mail: rewrite it without the nesting';
  }
  return null;
}

/** Names of the named capture groups `(?<name>...)` in the pattern, in order. */
export function namedGroups(pattern: string): string[] {
  const out: string[] = [];
  const re = /\\.|\[(?:\\.|[^\]\\])*\]|\(\?<([A-Za-z_$][\w$]*)>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(pattern)) !== null) if (m[1]) out.push(m[1]);
  return out;
}

/** Compile a validated pattern; case-insensitive unless caseSensitive. */
export function compileRegex(pattern: string, caseSensitive = false): RegExp {
  return new RegExp(pattern, caseSensitive ? '' : 'i');
}

/**
 * A small scan of the pattern structure: for every group, does it contain an unbounded quantifier (*, +, {n,}),
 * and is the group itself followed by an unbounded quantifier? That shape (star height > 1) is the classic
 * exponential-backtracking pattern. Alternation overlap like (a|a)* is not detected; inputs are capped anyway.
 */
function hasNestedUnboundedQuantifier(p: string): boolean {
  // stack of "contains an unbounded quantifier" flags for open groups
  const stack: boolean[] = [false];
  let i = 0;
  let lastAtomHadUnbounded = false; // the atom just closed (group) contained an unbounded quantifier
  while (i < p.length) {
    const ch = p[i]!;
    if (ch === '\\') {
      i += 2;
      lastAtomHadUnbounded = false;
      continue;
    }
    if (ch === '[') {
      i++;
      if (p[i] === '^') i++;
      if (p[i] === ']') i++;
      while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
      i++;
      lastAtomHadUnbounded = false;
      continue;
    }
    if (ch === '(') {
      stack.push(false);
      i++;
      if (p[i] === '?') {
        i++;
        if (p[i] === '<' && p[i + 1] !== '=' && p[i + 1] !== '!') {
          while (i < p.length && p[i] !== '>') i++;
          i++;
        } else {
          i += p[i] === '<' ? 2 : 1;
        }
      }
      lastAtomHadUnbounded = false;
      continue;
    }
    if (ch === ')') {
      const inner = stack.pop() ?? false;
      if (stack.length === 0) stack.push(false);
      if (inner) stack[stack.length - 1] = true;
      lastAtomHadUnbounded = inner;
      i++;
      continue;
    }
    const q = readQuantifier(p, i);
    if (q) {
      if (q.unbounded) {
        if (lastAtomHadUnbounded) return true;
        stack[stack.length - 1] = true;
      }
      i = q.end;
      if (p[i] === '?') i++;
      lastAtomHadUnbounded = false;
      continue;
    }
    lastAtomHadUnbounded = false;
    i++;
  }
  return false;
}

function readQuantifier(p: string, i: number): { unbounded: boolean; end: number } | null {
  const ch = p[i];
  if (ch === '*' || ch === '+') return { unbounded: true, end: i + 1 };
  if (ch === '?') return { unbounded: false, end: i + 1 };
  if (ch === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i, i + 24));
    if (!m) return null;
    const unbounded = m[2] !== undefined && (m[3] === '' || Number(m[3]) > 1000);
    return { unbounded, end: i + m[0].length };
  }
  return null;
}
