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
 * A header that contradicts itself is not believed: a dmarc result other than pass (for the From domain) beside a
 * dmarc=pass or an aligned dkim=pass, or dkim=pass and dkim=fail for the From domain, means not authenticated.
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
  const conflict = conflictingVerdicts(topmost.results, fromDomain);
  if (conflict) return { authenticated: false, reason: `conflicting verdicts from ${topmost.authservId}: ${conflict}` };
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

/**
 * Why one trusted header contradicts itself about the From domain, or undefined. A verifier writes one DMARC verdict
 * per message; two different ones ("dmarc=fail; dmarc=pass", or verdicts for two From domains), a dmarc=fail beside a
 * dkim=pass for the From domain, or a pass and a fail for the From domain's DKIM mean the header carries more than
 * one opinion (or the verifier saw another From than ours): none of them is believed.
 */
function conflictingVerdicts(results: AuthResult[], fromDomain: string): string | undefined {
  const dmarc = results.filter((r) => r.method === 'dmarc');
  const verdicts = new Set(dmarc.map((r) => r.result));
  if (verdicts.size > 1) return [...verdicts].map((v) => `dmarc=${v}`).join(' and ');
  const domains = new Set(dmarc.flatMap((r) => (r.props['header.from'] ? [r.props['header.from'].toLowerCase()] : [])));
  if (domains.size > 1) return `dmarc verdicts for ${[...domains].join(' and ')}`;
  const dkim = results.filter((r) => r.method === 'dkim' && r.props['header.d']?.toLowerCase() === fromDomain).map((r) => r.result);
  if (dkim.includes('pass') && dkim.includes('fail')) return `dkim=pass and dkim=fail for ${fromDomain}`;
  if (dkim.includes('pass') && dmarc.some((r) => r.result === 'fail')) return `dmarc=fail beside dkim=pass for ${fromDomain}`;
  return undefined;
}
