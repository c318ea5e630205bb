// Compiles a rule's `when:` tree into condition nodes, each leaf tagged with the fetch stage its data comes from.
import { createHash, timingSafeEqual } from 'node:crypto';
import { clip, maskTokens } from '../log.js';
import type { Address } from '../message/headers.js';
import { formatAddress } from '../message/headers.js';
import { decideAuthenticated } from '../message/auth-results.js';
import { previewText as messagePreview } from '../message/preview.js';
import { parseDuration, parseSize } from '../units.js';
import { compileGlob } from './glob.js';
import { compileMatch, describeMatch, hasMatchKeys, type MatchSpec, type Matcher } from './match.js';
import { DEFAULT_REGEX_INPUT_LIMIT } from './regex.js';
import type { ConditionConfig, AddressConditionConfig, HeaderConditionConfig } from './schema.js';
import type { CondNode, EvalContext, LeafResult, Stage } from './types.js';
import { isoTime } from '../iso-time.js';

/** Longest value shown in a trace. */
const SEEN_LIMIT = 200;

/** A value for the trace: command tokens masked before the cut, so a cut never shows half a token. */
export function short(s: string): string {
  // Bounded work on huge values: a prefix long enough for the shown part and any token crossing its end.
  const head = s.length > 4 * SEEN_LIMIT ? s.slice(0, 4 * SEEN_LIMIT) : s;
  const shown = clip(head.replace(/[\r\n\t]+/g, ' '), SEEN_LIMIT, maskTokens);
  return head !== s && !shown.endsWith('…') ? shown + '…' : shown;
}

function tri(ok: boolean): 'true' | 'false' {
  return ok ? 'true' : 'false';
}

type AddressField = 'from' | 'to' | 'cc' | 'reply_to' | 'sender';
const ADDRESS_PROP: Record<AddressField, 'from' | 'to' | 'cc' | 'replyTo' | 'sender'> = {
  from: 'from', to: 'to', cc: 'cc', reply_to: 'replyTo', sender: 'sender',
};

function leaf(path: string, stage: Stage, describe: string, test: (ctx: EvalContext) => LeafResult, previewLines?: number): CondNode {
  return previewLines === undefined ? { kind: 'leaf', path, stage, describe, test } : { kind: 'leaf', path, stage, describe, test, previewLines };
}

/** Results without captures or a text for the trace: the poller's evaluations (ctx.trace unset) make no new objects for them. */
const TRUE: LeafResult = Object.freeze({ result: 'true' });
const FALSE: LeafResult = Object.freeze({ result: 'false' });
const NO_HEADERS: LeafResult = Object.freeze({ result: 'unknown', seen: 'headers not fetched yet' });

/** A leaf result; `seen` (a value or a function making the text) is only kept when a trace is being made. */
function outcome(ctx: EvalContext, ok: boolean, seen: string | (() => string), captures?: Record<string, string>): LeafResult {
  if (captures) return ctx.trace ? { result: 'true', seen, captures } : { result: 'true', captures };
  if (!ctx.trace) return ok ? TRUE : FALSE;
  return { result: ok ? 'true' : 'false', seen };
}

/** Evaluate a header-stage leaf only when headers are there. */
function needHeaders(fn: (ctx: EvalContext, h: NonNullable<EvalContext['headers']>) => LeafResult) {
  return (ctx: EvalContext): LeafResult => (ctx.headers ? fn(ctx, ctx.headers) : NO_HEADERS);
}

/** Evaluate a full-stage leaf: unknown before RETR, false when RETR was refused (oversize). */
function needFull(fn: (ctx: EvalContext, full: NonNullable<EvalContext['msg']['full']>) => LeafResult) {
  return (ctx: EvalContext): LeafResult => {
    if (ctx.msg.full) return fn(ctx, ctx.msg.full);
    if (ctx.msg.oversize) return { result: 'false', seen: 'oversize: message not retrieved' };
    return { result: 'unknown', seen: 'body not fetched yet' };
  };
}

/** Options that shape how conditions are compiled. */
export interface ConditionOptions {
  /** The most characters the regexes of one condition read per evaluation (config regex_input_limit). */
  regexInputLimit: number;
}
const DEFAULT_OPTIONS: ConditionOptions = { regexInputLimit: DEFAULT_REGEX_INPUT_LIMIT };

/**
 * Match one string list: true when some value matches (Sieve semantics); the first matching value's captures.
 * The values share one regex budget of `limit` characters, taken from the first values on.
 */
function matchAny(ctx: EvalContext, values: readonly string[], m: Matcher, limit: number): LeafResult {
  const budget = { left: limit };
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const r = m(v, budget);
    if (r.ok) return ctx.trace ? { result: 'true', seen: () => short(v), ...(r.captures ? { captures: r.captures } : {}) } : r.captures ? { result: 'true', captures: r.captures } : TRUE;
  }
  if (!ctx.trace) return FALSE;
  return { result: 'false', seen: values.length ? () => short(values.join(' | ')) : '(absent)' };
}

/** matchAny of one value. */
function matchOne(ctx: EvalContext, value: string, m: Matcher, limit: number): LeafResult {
  if (ctx.trace) return matchAny(ctx, [value], m, limit);
  const r = m(value, { left: limit });
  return r.ok ? (r.captures ? { result: 'true', captures: r.captures } : TRUE) : FALSE;
}

function addressLeaf(field: AddressField, cfg: AddressConditionConfig, path: string, o: ConditionOptions): CondNode {
  const full = hasMatchKeys(cfg) ? compileMatch(cfg, o.regexInputLimit) : undefined;
  const parts: [keyof Address, Matcher][] = [];
  for (const k of ['address', 'localpart', 'domain', 'name'] as const) {
    const sub = cfg[k];
    if (sub) parts.push([k, compileMatch(sub, o.regexInputLimit)]);
  }
  const desc = [full ? describeMatch(cfg) : '', ...(['address', 'localpart', 'domain', 'name'] as const).filter((k) => cfg[k]).map((k) => `${k} ${describeMatch(cfg[k]!)}`)]
    .filter(Boolean)
    .join('; ');
  const prop = ADDRESS_PROP[field];
  return leaf(path, 'headers', desc, needHeaders((ctx, h) => {
    const list = h[prop];
    const budget = { left: o.regexInputLimit }; // one budget for every address and part this leaf reads
    for (let i = 0; i < list.length; i++) {
      const a = list[i]!;
      let captures: Record<string, string> | undefined;
      let ok = true;
      if (full) {
        const r = full(formatAddress(a), budget);
        ok = r.ok;
        if (r.captures) captures = { ...r.captures };
      }
      for (let j = 0; ok && j < parts.length; j++) {
        const part = parts[j]!; // not destructured: unoptimized code would make an iterator for it
        const r = part[1](a[part[0]], budget);
        ok = r.ok;
        if (r.captures) captures = { ...(captures ?? {}), ...r.captures };
      }
      if (ok) return outcome(ctx, true, () => short(formatAddress(a)), captures);
    }
    if (!ctx.trace) return FALSE;
    return { result: 'false', seen: list.length ? () => short(list.map(formatAddress).join(', ')) : '(no address)' };
  }));
}

function headerLeaf(cfg: HeaderConditionConfig, path: string, o: ConditionOptions): CondNode {
  const m = compileMatch(cfg, o.regexInputLimit);
  return leaf(path, 'headers', `${cfg.name}: ${describeMatch(cfg)}`, needHeaders((ctx, h) => matchAny(ctx, h.get(cfg.name), m, o.regexInputLimit)));
}

function sizeRange(over: string | number | undefined, under: string | number | undefined) {
  const o = over === undefined ? undefined : parseSize(over);
  const u = under === undefined ? undefined : parseSize(under);
  const describe = [o !== undefined ? `over ${o}` : '', u !== undefined ? `under ${u}` : ''].filter(Boolean).join(' and ');
  return { describe, test: (n: number) => (o === undefined || n > o) && (u === undefined || n < u) };
}

/** Constant-time equality of two strings (hashing first makes the lengths equal). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function asList(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

/** Compile a condition object into an AND node of its keys (a single key becomes that node). */
export function compileCondition(cfg: ConditionConfig, path: string, o: ConditionOptions = DEFAULT_OPTIONS): CondNode {
  const limit = o.regexInputLimit;
  const children: CondNode[] = [];
  for (const field of ['from', 'to', 'cc', 'reply_to', 'sender'] as const) {
    const a = cfg[field];
    if (a) children.push(addressLeaf(field, a, `${path}.${field}`, o));
  }
  if (cfg.subject) {
    const m = compileMatch(cfg.subject, limit);
    children.push(leaf(`${path}.subject`, 'headers', describeMatch(cfg.subject), needHeaders((ctx, h) =>
      h.has('subject') ? matchOne(ctx, h.subject, m, limit) : outcome(ctx, false, '(no Subject)'))));
  }
  if (cfg.header) {
    const list = Array.isArray(cfg.header) ? cfg.header : [cfg.header];
    list.forEach((hc, i) => children.push(headerLeaf(hc, Array.isArray(cfg.header) ? `${path}.header[${i}]` : `${path}.header`, o)));
  }
  if (cfg.message_id) {
    const m = compileMatch(cfg.message_id, limit);
    children.push(leaf(`${path}.message_id`, 'headers', describeMatch(cfg.message_id), needHeaders((ctx, h) =>
      h.messageId !== undefined ? matchOne(ctx, h.messageId, m, limit) : outcome(ctx, false, '(no Message-ID)'))));
  }
  if (cfg.date) {
    const newer = cfg.date.newer_than === undefined ? undefined : parseDuration(cfg.date.newer_than);
    const older = cfg.date.older_than === undefined ? undefined : parseDuration(cfg.date.older_than);
    const describe = [newer !== undefined ? `newer than ${cfg.date.newer_than}` : '', older !== undefined ? `older than ${cfg.date.older_than}` : ''].filter(Boolean).join(' and ');
    children.push(leaf(`${path}.date`, 'headers', describe, needHeaders((ctx, h) => {
      if (!h.date) return { result: 'false', seen: h.dateRaw === undefined ? '(no Date)' : () => `unparseable: ${short(h.dateRaw!)}` };
      const age = ctx.now.getTime() - h.date.getTime();
      const ok = (newer === undefined || age < newer) && (older === undefined || age > older);
      const date = h.date;
      return outcome(ctx, ok, () => isoTime(date));
    })));
  }
  if (cfg.size) {
    const r = sizeRange(cfg.size.over, cfg.size.under);
    children.push(leaf(`${path}.size`, 'size', r.describe, (ctx) => ({ result: tri(r.test(ctx.msg.size)), seen: () => String(ctx.msg.size) })));
  }
  if (cfg.exists !== undefined) {
    const names = asList(cfg.exists);
    children.push(leaf(`${path}.exists`, 'headers', names.join(', '), needHeaders((_c, h) => {
      const missing = names.filter((n) => !h.has(n));
      return { result: tri(missing.length === 0), seen: missing.length ? `missing ${missing.join(', ')}` : 'all present' };
    })));
  }
  if (cfg.not_exists !== undefined) {
    const names = asList(cfg.not_exists);
    children.push(leaf(`${path}.not_exists`, 'headers', names.join(', '), needHeaders((_c, h) => {
      const present = names.filter((n) => h.has(n));
      return { result: tri(present.length === 0), seen: present.length ? `present ${present.join(', ')}` : 'none present' };
    })));
  }
  if (cfg.preview) {
    const lines = cfg.preview.lines;
    const m = compileMatch(cfg.preview, limit);
    children.push(leaf(`${path}.preview`, 'preview', `first ${lines} lines: ${describeMatch(cfg.preview)}`, (ctx) => {
      const text = previewText(ctx, lines);
      return text === undefined ? { result: 'unknown', seen: 'preview not fetched yet' } : matchOne(ctx, text, m, limit);
    }, lines));
  }
  if (cfg.body) {
    const m = compileMatch(cfg.body, limit);
    children.push(leaf(`${path}.body`, 'full', describeMatch(cfg.body), needFull((ctx, full) => matchOne(ctx, full.text, m, limit))));
  }
  if (cfg.attachment) {
    const a = cfg.attachment;
    const typeM = a.type === undefined ? undefined : typeof a.type === 'string' ? globMatcher(a.type) : compileMatch(a.type, limit);
    const nameM = a.filename === undefined ? undefined : typeof a.filename === 'string' ? globMatcher(a.filename) : compileMatch(a.filename, limit);
    const sizeR = a.size ? sizeRange(a.size.over, a.size.under) : undefined;
    const describe = [a.type !== undefined ? `type ${JSON.stringify(a.type)}` : '', a.filename !== undefined ? `filename ${JSON.stringify(a.filename)}` : '', sizeR ? `size ${sizeR.describe}` : '']
      .filter(Boolean).join(', ') || 'any attachment';
    children.push(leaf(`${path}.attachment`, 'full', describe, needFull((_c, full) => {
      const budget = { left: limit };
      for (const att of full.attachments) {
        if (typeM && !typeM(att.contentType, budget).ok) continue;
        if (nameM && !nameM(att.filename ?? '', budget).ok) continue;
        if (sizeR && !sizeR.test(att.size)) continue;
        return { result: 'true', seen: () => short(`${att.filename ?? '(unnamed)'} ${att.contentType} ${att.size} bytes`) };
      }
      return { result: 'false', seen: full.attachments.length ? () => short(full.attachments.map((x) => `${x.filename ?? '(unnamed)'} ${x.contentType} ${x.size}`).join(', ')) : '(no attachments)' };
    })));
  }
  if (cfg.authenticated !== undefined) {
    const want = cfg.authenticated;
    children.push(leaf(`${path}.authenticated`, 'headers', String(want), needHeaders((ctx, h) => {
      let d = ctx.memo?.get('auth') as ReturnType<typeof decideAuthenticated> | undefined;
      if (!d) {
        d = decideAuthenticated(h, ctx.trustedAuthservIds);
        (ctx.memo ??= new Map()).set('auth', d);
      }
      const reason = d.reason;
      return { result: tri(d.authenticated === want), seen: () => short(reason) };
    })));
  }
  if (cfg.shared_secret) {
    const { secret, header } = cfg.shared_secret;
    children.push(leaf(`${path}.shared_secret`, 'headers', header ? `token in ${header}` : 'token in Subject', needHeaders((_c, h) => {
      const candidates = header ? h.get(header).map((v) => v.trim()) : h.subject.split(/\s+/).filter(Boolean);
      let found = false;
      for (const c of candidates) if (constantTimeEqual(c, secret)) found = true; // no early exit: same work either way
      return { result: tri(found), seen: found ? 'token present' : 'token absent' };
    })));
  }
  (cfg.all ?? []).forEach((c, i) => children.push(compileCondition(c, `${path}.all[${i}]`, o)));
  if (cfg.any) children.push({ kind: 'any', path: `${path}.any`, children: cfg.any.map((c, i) => compileCondition(c, `${path}.any[${i}]`, o)) });
  if (cfg.not) children.push({ kind: 'not', path: `${path}.not`, child: compileCondition(cfg.not, `${path}.not`, o) });
  if (children.length === 1) return children[0]!;
  return { kind: 'all', path, children };
}

function globMatcher(g: string): Matcher {
  const f = compileGlob(g, false);
  return (v) => ({ ok: f(v) });
}

/** The preview text a preview leaf of `lines` lines can see, or undefined when not fetched (falls back to RETR text). */
function previewText(ctx: EvalContext, lines: number): string | undefined {
  const key = `preview:${lines}`;
  if (ctx.memo?.has(key)) return ctx.memo.get(key) as string | undefined;
  const out = messagePreview(ctx.msg, lines, true);
  (ctx.memo ??= new Map()).set(key, out);
  return out;
}

/** Evaluate a node with Kleene three-valued logic; every leaf is evaluated so the trace is complete. */
export interface NodeTrace { path: string; result: 'true' | 'false' | 'unknown'; test?: string; seen?: string; stage?: Stage; previewLines?: number }

/**
 * What an evaluation reports besides its result: `trace` gets every node (test-rule's explanation; the values seen are
 * only made into text for it), `unknown` every leaf whose data is not fetched yet (what the poller fetches next).
 */
export interface EvalHooks {
  trace?: (t: NodeTrace) => void;
  unknown?: (leaf: { stage: Stage; previewLines?: number }) => void;
}

export function evalNode(node: CondNode, ctx: EvalContext, hooks: EvalHooks): { result: 'true' | 'false' | 'unknown'; captures: Record<string, string> } {
  if (node.kind === 'leaf') {
    const r = node.test(ctx);
    if (r.result === 'unknown') hooks.unknown?.(node);
    if (hooks.trace) {
      const seen = typeof r.seen === 'function' ? r.seen() : r.seen;
      hooks.trace({
        path: node.path, result: r.result, test: node.describe, stage: node.stage,
        ...(seen !== undefined ? { seen } : {}),
        ...(node.previewLines !== undefined ? { previewLines: node.previewLines } : {}),
      });
    }
    return { result: r.result, captures: r.result === 'true' && r.captures ? r.captures : {} };
  }
  if (node.kind === 'not') {
    const r = evalNode(node.child, ctx, hooks);
    const result = r.result === 'true' ? 'false' : r.result === 'false' ? 'true' : 'unknown';
    hooks.trace?.({ path: node.path, result });
    return { result, captures: {} };
  }
  const results = node.children.map((c) => evalNode(c, ctx, hooks));
  let result: 'true' | 'false' | 'unknown';
  if (node.kind === 'all') {
    result = results.some((r) => r.result === 'false') ? 'false' : results.every((r) => r.result === 'true') ? 'true' : 'unknown';
  } else {
    result = results.some((r) => r.result === 'true') ? 'true' : results.every((r) => r.result === 'false') ? 'false' : 'unknown';
  }
  const captures: Record<string, string> = {};
  if (result === 'true') {
    for (const r of results) {
      if (r.result !== 'true') continue;
      for (const [k, v] of Object.entries(r.captures)) if (!(k in captures)) captures[k] = v;
    }
  }
  if (node.kind === 'any' || node.children.length > 1) hooks.trace?.({ path: node.path, result });
  return { result, captures };
}

/** A node's outcome for the poller: the result and, when true, the named captures (a shared empty object when none). */
export interface Decision { result: 'true' | 'false' | 'unknown'; captures: Readonly<Record<string, string>> }
const NO_CAPTURES: Readonly<Record<string, string>> = Object.freeze({});
const DECIDED_TRUE: Decision = Object.freeze({ result: 'true', captures: NO_CAPTURES });
const DECIDED_FALSE: Decision = Object.freeze({ result: 'false', captures: NO_CAPTURES });
const UNDECIDED: Decision = Object.freeze({ result: 'unknown', captures: NO_CAPTURES });

/** Per node: the stages of the leaves under it (bit per stage), to tell whether a subtree can still be unknown. */
const subtreeStages = new WeakMap<CondNode, number>();
const STAGE_BIT: Record<Stage, number> = { size: 1, headers: 2, preview: 4, full: 8 };
function stagesUnder(node: CondNode): number {
  let bits = subtreeStages.get(node);
  if (bits === undefined) {
    bits = node.kind === 'leaf' ? STAGE_BIT[node.stage] : node.kind === 'not' ? stagesUnder(node.child) : node.children.reduce((b, c) => b | stagesUnder(c), 0);
    subtreeStages.set(node, bits);
  }
  return bits;
}

/** Whether a leaf under `node` can be unknown on this data (then it is evaluated, so the poller hears what it needs). */
function mayBeUnknown(node: CondNode, ctx: EvalContext): boolean {
  const bits = stagesUnder(node);
  if (bits & STAGE_BIT.headers && !ctx.headers) return true;
  if (bits & STAGE_BIT.preview && !ctx.msg.full) return true;
  return (bits & STAGE_BIT.full) !== 0 && !ctx.msg.full && !ctx.msg.oversize;
}

/**
 * The poller's evaluation of a node: the same result, captures and unknown leaves (`unknown` gets each unknown leaf's
 * stage) as evalNode without a trace, with less work: once an `all` is false, the children after it are evaluated
 * only when one of their leaves could be unknown (the poller still learns every stage it may need). An `any` that is
 * true evaluates every child, since each true one adds its captures.
 */
export function decideNode(node: CondNode, ctx: EvalContext, unknown: Stage[]): Decision {
  if (node.kind === 'leaf') {
    const r = node.test(ctx);
    if (r.result === 'true') return r.captures ? { result: 'true', captures: r.captures } : DECIDED_TRUE;
    if (r.result === 'false') return DECIDED_FALSE;
    unknown.push(node.stage);
    return UNDECIDED;
  }
  if (node.kind === 'not') {
    const r = decideNode(node.child, ctx, unknown);
    return r.result === 'true' ? DECIDED_FALSE : r.result === 'false' ? DECIDED_TRUE : UNDECIDED;
  }
  const all = node.kind === 'all';
  const children = node.children;
  let settled = false; // all: a child is false; any: a child is true
  let unknowns = 0;
  let captures: Record<string, string> | undefined;
  for (let i = 0; i < children.length; i++) {
    const c = children[i]!;
    if (settled && all && !mayBeUnknown(c, ctx)) continue;
    const r = decideNode(c, ctx, unknown);
    if (r.result === 'unknown') unknowns++;
    else if (r.result === (all ? 'false' : 'true')) settled = true;
    if (r.result === 'true') {
      // The captures of the true children, the first one's value for a name (as evalNode merges them).
      if (r.captures !== NO_CAPTURES) {
        for (const k in r.captures) if (!captures || !(k in captures)) (captures ??= {})[k] = r.captures[k]!;
      }
    }
  }
  let result: Decision['result'];
  if (all) result = settled ? 'false' : unknowns > 0 ? 'unknown' : 'true';
  else result = settled ? 'true' : unknowns > 0 ? 'unknown' : 'false';
  if (result !== 'true') return result === 'false' ? DECIDED_FALSE : UNDECIDED;
  return captures ? { result, captures } : DECIDED_TRUE;
}

/** Every leaf of the tree (for computing what a rule can need). */
export function leaves(node: CondNode | undefined): Extract<CondNode, { kind: 'leaf' }>[] {
  if (!node) return [];
  if (node.kind === 'leaf') return [node];
  if (node.kind === 'not') return leaves(node.child);
  return node.children.flatMap(leaves);
}

export type { MatchSpec };
