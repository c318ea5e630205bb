// Sieve-style wildcard matching (`*`, `?`, backslash escape) without regular expressions, so hostile input cannot make it backtrack.

/** A glob split into tokens: literal characters, '?' (any one char) and '*' (any run). */
type GlobToken = { kind: 'lit'; ch: string } | { kind: 'one' } | { kind: 'any' };

/** Return a description of what is wrong with the glob, or null when it is valid. */
export function validateGlob(glob: string): string | null {
  let escaped = false;
  for (const ch of glob) {
    if (escaped) { escaped = false; continue; }
    if (ch === '\\') escaped = true;
  }
  if (escaped) return 'glob ends with a lone backslash (escape it as \\\\)';
  return null;
}

function tokenize(glob: string, fold: boolean): GlobToken[] {
  const out: GlobToken[] = [];
  const chars = Array.from(glob);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '\\' && i + 1 < chars.length) {
      const next = chars[++i]!;
      out.push({ kind: 'lit', ch: fold ? next.toLowerCase() : next });
    } else if (ch === '*') {
      if (out.at(-1)?.kind !== 'any') out.push({ kind: 'any' });
    } else if (ch === '?') {
      out.push({ kind: 'one' });
    } else {
      out.push({ kind: 'lit', ch: fold ? ch.toLowerCase() : ch });
    }
  }
  return out;
}

/**
 * Compile a glob into a matcher. The whole value must match (like Sieve :matches).
 * Matching is O(len(value) * len(glob)) at worst: the classic two-pointer wildcard algorithm.
 */
export function compileGlob(glob: string, caseSensitive = false): (value: string) => boolean {
  const err = validateGlob(glob);
  if (err) throw new Error(err);
  const tokens = tokenize(glob, !caseSensitive);
  return (value: string) => {
    const s = Array.from(caseSensitive ? value : value.toLowerCase());
    let si = 0;
    let ti = 0;
    let starTi = -1;
    let starSi = 0;
    while (si < s.length) {
      const t = tokens[ti];
      if (t && (t.kind === 'one' || (t.kind === 'lit' && t.ch === s[si]))) {
        si++;
        ti++;
      } else if (t && t.kind === 'any') {
        starTi = ti++;
        starSi = si;
      } else if (starTi >= 0) {
        ti = starTi + 1;
        si = ++starSi;
      } else {
        return false;
      }
    }
    while (tokens[ti]?.kind === 'any') ti++;
    return ti === tokens.length;
  };
}
