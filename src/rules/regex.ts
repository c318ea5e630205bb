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
  const pair = overlappingUnboundedPair(pattern);
  if (pair) {
    return `regex has two unbounded repeats in a row that can match the same text (${pair[0]} then ${pair[1]}, like \\w+\\s*\\w+ or .* .*); on a long hostile value the split between them is tried every way (cubic cost): separate them with something the first cannot match (\\w+\\s+\\w+, [^ ]+ .*) or bound one ({1,64})`;
  }
  return null;
}

/** Characters tried when asking whether two pieces of a pattern can match the same text. */
const PROBE_CHARS = ['a', 'Z', '0', '_', ' ', '\t', '\n', '-', '.', '@', '/', ':', ',', '"', '<', '=', '?', '#', 'é', '\u00a0'];

/** One piece of a sequence: its source (atom and quantifier), the characters it can match one of, and its repeat. */
interface SeqItem { src: string; chars: Set<string>; optional: boolean; unbounded: boolean }

/** Which probe characters the atom matches as a whole string of one or more of them ('' when it can match empty). */
function probe(atom: string): { chars: Set<string>; empty: boolean } {
  const chars = new Set<string>();
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${atom})$`, 'iu');
  } catch {
    try {
      re = new RegExp(`^(?:${atom})$`, 'i');
    } catch {
      return { chars, empty: true }; // e.g. a back-reference alone: treat as transparent
    }
  }
  for (const c of PROBE_CHARS) if (re.test(c) || re.test(c + c)) chars.add(c);
  return { chars, empty: re.test('') };
}

/** Split a pattern (or a group's content) into its top-level alternatives, each a list of atoms with quantifiers. */
function sequences(p: string): { items: SeqItem[]; groups: string[] }[] {
  const alts: { items: SeqItem[]; groups: string[] }[] = [{ items: [], groups: [] }];
  let i = 0;
  while (i < p.length) {
    const start = i;
    const ch = p[i]!;
    let inner: string | undefined;
    if (ch === '|') {
      alts.push({ items: [], groups: [] });
      i++;
      continue;
    }
    if (ch === '\\') {
      i += 2;
      if (p[i - 1] === 'u' && p[i] === '{') i = p.indexOf('}', i) + 1 || p.length;
      else if (p[i - 1] === 'k' && p[i] === '<') i = p.indexOf('>', i) + 1 || p.length;
      else if (p[i - 1] === 'x') i += 2;
      else if (p[i - 1] === 'u') i += 4;
      else if (p[i - 1] === 'c') i += 1;
      else if (/[pP]/.test(p[i - 1]!) && p[i] === '{') i = p.indexOf('}', i) + 1 || p.length;
    } else if (ch === '[') {
      i++;
      if (p[i] === '^') i++;
      if (p[i] === ']') i++;
      while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
      i++;
    } else if (ch === '(') {
      let depth = 0;
      let j = i;
      while (j < p.length) {
        const c = p[j]!;
        if (c === '\\') { j += 2; continue; }
        if (c === '[') {
          j++;
          while (j < p.length && p[j] !== ']') j += p[j] === '\\' ? 2 : 1;
          j++;
          continue;
        }
        if (c === '(') depth++;
        else if (c === ')' && --depth === 0) break;
        j++;
      }
      const body = p.slice(i + 1, j);
      const m = /^\?(?::|<[A-Za-z_$][\w$]*>|=|!|<=|<!)/.exec(body);
      inner = m ? body.slice(m[0].length) : body;
      if (m && /^\?(?:=|!|<=|<!)/.test(m[0])) inner = undefined; // a lookaround: zero-width, not searched
      i = j + 1;
    } else {
      i++;
    }
    const atom = p.slice(start, i);
    const q = readQuantifier(p, i);
    let optional = false;
    let unbounded = false;
    if (q) {
      const m = /^\{(\d+)/.exec(p.slice(i, q.end));
      optional = p[i] === '*' || p[i] === '?' || (m !== null && m[1] === '0');
      unbounded = q.unbounded;
      i = q.end;
      if (p[i] === '?') i++;
    }
    const alt = alts[alts.length - 1]!;
    if (/^(?:\^|\$|\\[bB])$/.test(atom) || (atom.startsWith('(?') && inner === undefined)) {
      alt.items.push({ src: atom, chars: new Set(PROBE_CHARS), optional: true, unbounded: false }); // zero-width
      continue;
    }
    const pr = probe(atom);
    // a group whose content repeats without bound (like (?<cam>\w+)) counts as an unbounded repeat itself
    const innerUnbounded = inner !== undefined && !unbounded && sequences(inner).some((alt2) => alt2.items.some((it) => it.unbounded));
    alt.items.push({ src: p.slice(start, i), chars: pr.chars, optional: optional || pr.empty, unbounded: unbounded || innerUnbounded });
    if (inner !== undefined) alt.groups.push(inner);
  }
  return alts;
}

/**
 * Two unbounded repeats in one sequence that some character can feed both, with everything between them able to
 * match that character or nothing (like \w+\s*\w+ or (.*) (.*)), the first one where a match may start: on a long
 * run of that character every split is tried from every start, n³ steps. Returns the two pieces, or null. A heuristic over probe characters:
 * it errs towards accepting (periodic overlaps such as (ab)+ab(ab)+ are not seen).
 */
function overlappingUnboundedPair(pattern: string): [string, string] | null {
  const todo = [pattern];
  for (let guard = 0; todo.length && guard < 1000; guard++) {
    for (const { items, groups } of sequences(todo.pop()!)) {
      todo.push(...groups);
      for (let a = 0; a < items.length; a++) {
        if (!items[a]!.unbounded) continue;
        // only where a match can start at any position (nothing required before, no ^): a literal prefix or an
        // anchor leaves few starts, and the cost quadratic, which regex_input_limit bounds
        if (!items.slice(0, a).every((it) => it.optional && it.src !== '^')) break;
        let shared = new Set(items[a]!.chars);
        for (let b = a + 1; b < items.length && shared.size; b++) {
          const it = items[b]!;
          if (it.unbounded && [...shared].some((c) => it.chars.has(c))) return [items[a]!.src, it.src];
          if (!it.optional) shared = new Set([...shared].filter((c) => it.chars.has(c)));
        }
      }
    }
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
