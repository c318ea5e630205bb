// Tolerant parser of Authentication-Results (RFC 8601) and the trust decision: only the topmost header of a trusted authserv-id counts.
import type { ParsedHeaders } from './headers.js';
import { stripComments } from './headers.js';

export interface AuthResult {
  method: string;
  result: string;
  /** ptype.property → value, lower-cased keys, e.g. { 'header.d': 'example.com' }. */
  props: Record<string, string>;
}

export interface AuthResultsHeader {
  authservId: string;
  results: AuthResult[];
}

/** Split at a separator character outside double quotes. */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (inQuote && ch === '\\' && i + 1 < s.length) {
      cur += ch + s[++i];
      continue;
    }
    if (ch === '"') inQuote = !inQuote;
    if (ch === sep && !inQuote) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function unquoteValue(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  return t;
}

/** Tokenise "a=b c.d=e" where values may be quoted strings. */
function keyValues(s: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([A-Za-z0-9_.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) out.push([m[1]!.toLowerCase(), unquoteValue(m[2]!)]);
  return out;
}

/** Parse one Authentication-Results value; undefined when not even an authserv-id can be found. */
export function parseAuthenticationResults(value: string): AuthResultsHeader | undefined {
  const { text } = stripComments(value);
  const [head, ...rest] = splitOutsideQuotes(text, ';');
  const idTokens = (head ?? '').trim().split(/\s+/).filter(Boolean);
  const authservId = unquoteValue(idTokens[0] ?? '').toLowerCase();
  if (!authservId || authservId.includes('=')) return undefined;
  const results: AuthResult[] = [];
  for (const part of rest) {
    const kvs = keyValues(part);
    const first = kvs[0];
    if (!first || first[0] === 'none') continue;
    const method = first[0].split('/')[0]!;
    if (method.includes('.')) continue; // a property, not a method: malformed resinfo
    const props: Record<string, string> = {};
    for (const [k, v] of kvs.slice(1)) if (!(k in props)) props[k] = v;
    results.push({ method, result: first[1].toLowerCase(), props });
  }
  return { authservId, results };
}

export interface AuthDecision {
  authenticated: boolean;
  /** Why: which header/result decided, for traces; never contains secrets. */
  reason: string;
}

/**
 * Decide whether the sender is authenticated:
 * take the TOPMOST Authentication-Results header whose authserv-id is in `trustedAuthservIds` (RFC 8601 §5: the
 * receiving MTA adds its header on top; lower ones with the same id may be forged by the sender), ignore all others,
 * and accept when it says dmarc=pass (and its header.from, if given, is the From domain), or dkim=pass with header.d
 * EQUAL to the From domain (a parent domain or a subdomain does not count). Exactly one From address is required.
 */
export function decideAuthenticated(headers: ParsedHeaders, trustedAuthservIds: readonly string[]): AuthDecision {
  if (trustedAuthservIds.length === 0) return { authenticated: false, reason: 'no trusted_authserv_ids configured' };
  const trusted = new Set(trustedAuthservIds.map((s) => s.toLowerCase()));
  let topmost: AuthResultsHeader | undefined;
  for (const v of headers.getRaw('authentication-results')) {
    const parsed = parseAuthenticationResults(v);
    if (parsed && trusted.has(parsed.authservId)) {
      topmost = parsed;
      break;
    }
  }
  if (!topmost) return { authenticated: false, reason: 'no Authentication-Results from a trusted authserv-id' };
  if (headers.from.length !== 1 || !headers.from[0]!.domain) {
    return { authenticated: false, reason: `From must hold exactly one address (has ${headers.from.length})` };
  }
  const fromDomain = headers.from[0]!.domain;
  for (const r of topmost.results) {
    if (r.method === 'dmarc' && r.result === 'pass') {
      const hf = r.props['header.from']?.toLowerCase();
      if (hf === undefined || hf === fromDomain) return { authenticated: true, reason: `dmarc=pass from ${topmost.authservId}` };
    }
  }
  for (const r of topmost.results) {
    if (r.method === 'dkim' && r.result === 'pass' && r.props['header.d']?.toLowerCase() === fromDomain) {
      return { authenticated: true, reason: `dkim=pass header.d=${fromDomain} from ${topmost.authservId}` };
    }
  }
  return { authenticated: false, reason: `topmost trusted result from ${topmost.authservId} has no dmarc=pass or dkim=pass for ${fromDomain}` };
}
