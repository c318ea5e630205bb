// Compiles validated rules into a RuleSet and evaluates a message in stages with Kleene logic, saying what data is still needed.
import { maskTokens, registerCommandToken } from '../log.js';
import { parseDuration, parseSize } from '../units.js';
import { compileGlob } from './glob.js';
import { compileCondition, decideNode, evalNode, leaves, type ConditionOptions, type EvalHooks } from './conditions.js';
import { DEFAULT_REGEX_INPUT_LIMIT } from './regex.js';
import { parseRateLimit } from './rate-limit.js';
import { COMMAND_DEFAULTS, RulesSchema, type RuleConfig, type ConditionConfig } from './schema.js';
import { templateVariables } from './template.js';
import type { AttachmentInfo } from '../message/body.js';
import type { ParsedHeaders } from '../message/headers.js';
import type {
  AttachmentPublishSpec, CommandGuard, CompiledRule, ConditionTrace, EvalContext, Evaluation, MessageData, Need, PendingNeed, PublishSpec, RuleMatch, RuleTrace, Stage,
} from './types.js';
import { isoTime } from '../iso-time.js';

export interface CompileOptions {
  /** authserv-ids whose Authentication-Results are trusted (config trusted_authserv_ids); empty: nobody is authenticated. */
  trustedAuthservIds: string[];
  /** Only these rules (by name, kept in configured order); undefined: all rules. */
  mailboxRuleNames?: string[];
  /** The most characters one regex condition reads per evaluation (config regex_input_limit); default 4 KiB. */
  regexInputLimit?: number;
}

export interface RuleSet {
  rules: CompiledRule[];
  /** The most preview lines any rule asks for (what TOP n N should fetch); 0 when no rule uses a preview. */
  maxPreviewLines: number;
  /** Whether any rule has a `size` condition: only then must every new message's LIST size be known up front. */
  usesListSize: boolean;
  /**
   * With `now` (test-rule, explain): evaluated at that time, with the full trace. Without (the poller): evaluated now,
   * cached while the message's data is the same, and without trace (Evaluation.trace is empty).
   */
  evaluate(msg: MessageData, now?: Date): Evaluation;
  /** Whether any rule publishes attachments of this type/name (use as parseMessage's keepAttachment). */
  wantsAttachment(a: Pick<AttachmentInfo, 'filename' | 'contentType'>): boolean;
}

/** Default preview lines when a template uses {{preview}} but no preview condition says how many. */
export const DEFAULT_PREVIEW_LINES = 20;
const DEFAULT_TOPIC = 'alerts/{{rule}}';
const DEFAULT_ATTACHMENT_MAX = 2 * 1024 * 1024;
const DEFAULT_ATTACHMENT_COUNT = 10;

const STAGE_ORDER: Record<Stage, number> = { size: 0, headers: 1, preview: 2, full: 3 };

function maxNeed(a: Need, b: Need): Need {
  const rank = (n: Need) => (typeof n === 'object' ? STAGE_ORDER.preview : STAGE_ORDER[n]);
  if (typeof a === 'object' && typeof b === 'object') return { preview: Math.max(a.preview, b.preview) };
  return rank(b) > rank(a) ? b : a;
}

function compileRule(cfg: RuleConfig, index: number, o: ConditionOptions): CompiledRule {
  const condition = cfg.when ? compileCondition(cfg.when as ConditionConfig, 'when', o) : undefined;
  const pubCfgs = cfg.publish === undefined ? [{}] : Array.isArray(cfg.publish) ? cfg.publish : [cfg.publish];
  const publish: PublishSpec[] = pubCfgs.map((p: { topic?: string; payload?: string; qos?: 0 | 1 | 2; retain?: boolean; properties?: Record<string, string> }) => ({
    topic: p.topic ?? DEFAULT_TOPIC,
    payload: p.payload ?? 'default',
    qos: p.qos ?? 1,
    retain: p.retain ?? false,
    properties: p.properties ?? {},
  }));
  let attachments: AttachmentPublishSpec | undefined;
  if (cfg.attachments) {
    const a = cfg.attachments;
    attachments = {
      topic: a.topic,
      types: (a.types ?? ['*/*']).map((g) => compileGlob(g, false)),
      ...(a.filename !== undefined ? { filename: compileGlob(a.filename, false) } : {}),
      maxSize: a.max_size === undefined ? DEFAULT_ATTACHMENT_MAX : parseSize(a.max_size),
      maxCount: a.max_count ?? DEFAULT_ATTACHMENT_COUNT,
      qos: a.qos ?? 1,
      retain: a.retain ?? false,
    };
  }
  const templates = publish.flatMap((p) => [p.topic, p.payload === 'default' ? '' : p.payload, ...Object.values(p.properties)]);
  if (attachments) templates.push(attachments.topic);
  const vars = new Set(templates.flatMap((t) => templateVariables(t)));
  const leafList = leaves(condition);
  const conditionPreview = Math.max(0, ...leafList.map((l) => l.previewLines ?? 0));
  const fullForPublish = cfg.body === true || attachments !== undefined || vars.has('body');
  const previewLines = vars.has('preview') ? conditionPreview || DEFAULT_PREVIEW_LINES : 0;

  let needs: Need = 'size';
  for (const l of leafList) needs = maxNeed(needs, l.stage === 'preview' ? { preview: l.previewLines ?? 1 } : l.stage);
  if (publish.length > 0) needs = maxNeed(needs, 'headers');
  if (previewLines) needs = maxNeed(needs, { preview: previewLines });
  if (fullForPublish) needs = maxNeed(needs, 'full');

  const shared = collectSecrets(cfg.when as ConditionConfig | undefined);
  for (const s of shared) registerCommandToken(s);

  return {
    name: cfg.name,
    index,
    needs,
    publish,
    ...(attachments ? { attachments } : {}),
    stop: cfg.stop === true,
    ...(cfg.then ? { then: cfg.then } : {}),
    ...(cfg.rate_limit ? { rateLimit: parseRateLimit(cfg.rate_limit) } : {}),
    action: cfg.action === true,
    ...(cfg.action === true ? { command: commandGuard(cfg) } : {}),
    fullForPublish,
    publishUsesPreview: previewLines > 0,
    previewLines: Math.max(previewLines, conditionPreview),
    usesListSize: leafList.some((l) => l.stage === 'size'),
    ...(condition ? { condition } : {}),
    config: cfg,
  };
}

function commandGuard(cfg: RuleConfig): CommandGuard {
  return {
    maxAgeMs: parseDuration(cfg.max_age ?? COMMAND_DEFAULTS.max_age),
    maxFutureMs: parseDuration(cfg.max_future ?? COMMAND_DEFAULTS.max_future),
    replayWindowMs: parseDuration(cfg.replay_window ?? COMMAND_DEFAULTS.replay_window),
  };
}

/** "42 s", "17 min", "5 h", "517 d": how far a Date is from now, for log lines and traces. */
function spoken(ms: number): string {
  const s = Math.round(ms / 1000);
  for (const [unit, n] of [['d', 86_400], ['h', 3600], ['min', 60]] as const) if (s >= n && s % n === 0) return `${s / n} ${unit}`;
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** Header fields RFC 5322 allows at most once, that a command's authentication or meaning depends on. */
const SINGLE_HEADERS = ['date', 'from', 'sender', 'reply-to', 'to', 'cc', 'message-id', 'subject'] as const;

/** The Message-ID an action rule remembers, or undefined when the mail has none worth the name. */
export function commandMessageId(headers: ParsedHeaders): string | undefined {
  const id = headers.messageId?.trim();
  return id && id !== '<>' ? id : undefined;
}

/**
 * Why an action rule whose conditions hold must not act on this mail, or undefined. Judged on the parsed Date header
 * (missing or unparseable: not acted on) and the presence of a Message-ID (the key of the replay memory).
 */
export function commandRefusal(guard: CommandGuard, headers: ParsedHeaders, now: Date): string | undefined {
  // RFC 5322 allows each of these once. A second one can be added on top of a signed mail without breaking DKIM
  // (the verifier reads the bottom one, we would read the top one): a fresh Date on a stale command, another Subject.
  for (const name of SINGLE_HEADERS) {
    const n = headers.getRaw(name).length;
    if (n > 1) return `${n} ${name} headers (a command mail may have one: a second can be added without breaking its signature)`;
  }
  if (!headers.date) {
    return headers.dateRaw === undefined ? 'no Date header (a command mail must be dated)' : `unparseable Date header ${JSON.stringify(headers.dateRaw.slice(0, 80))}`;
  }
  const age = now.getTime() - headers.date.getTime();
  const iso = isoTime(headers.date);
  if (age > guard.maxAgeMs) return `Date ${iso} is ${spoken(age)} old, more than max_age ${spoken(guard.maxAgeMs)} (a stale or replayed command)`;
  if (-age > guard.maxFutureMs) return `Date ${iso} is ${spoken(-age)} in the future, more than max_future ${spoken(guard.maxFutureMs)}`;
  if (commandMessageId(headers) === undefined) return 'no Message-ID header (a command mail needs one, so that a copy cannot act twice)';
  return undefined;
}

function collectSecrets(c: ConditionConfig | undefined): string[] {
  if (!c) return [];
  return [
    ...(c.shared_secret ? [c.shared_secret.secret] : []),
    ...(c.all ?? []).flatMap(collectSecrets),
    ...(c.any ?? []).flatMap(collectSecrets),
    ...collectSecrets(c.not),
  ];
}

/**
 * Validate (again: cheap, and callers may pass plain objects) and compile the rules. Throws a ZodError for invalid
 * rules and an Error for a mailbox rule name that does not exist. Shared secrets are registered for masking.
 */
export function compileRules(rules: RuleConfig[], opts: CompileOptions): RuleSet {
  const valid = RulesSchema.parse(rules);
  let selected = valid.map((r, i) => ({ r, i }));
  if (opts.mailboxRuleNames) {
    const names = new Set(opts.mailboxRuleNames);
    for (const n of names) if (!valid.some((r) => r.name === n)) throw new Error(`mailbox refers to unknown rule "${n}"`);
    selected = selected.filter(({ r }) => names.has(r.name));
  }
  const condOpts: ConditionOptions = { regexInputLimit: opts.regexInputLimit ?? DEFAULT_REGEX_INPUT_LIMIT };
  const compiled = selected.map(({ r, i }) => compileRule(r, i, condOpts));
  const trusted = [...opts.trustedAuthservIds];
  const maxPreviewLines = Math.max(0, ...compiled.map((r) => r.previewLines));
  const usesListSize = compiled.some((r) => r.usesListSize);
  const cache = new WeakMap<MessageData, CachedEvaluation>();
  let blank: Evaluation | undefined;

  /** The poller's evaluation: the same as evaluateNow without a trace, in fewer steps and objects. */
  const decide = (msg: MessageData, now: Date): Evaluation => {
    const headers = msg.headers ?? msg.full?.headers;
    const ctx: EvalContext = { msg, now, trustedAuthservIds: trusted, ...(headers ? { headers } : {}) };
    const matched: RuleMatch[] = [];
    const pending: Evaluation['pending'] = [];
    const refused: Evaluation['refused'] = [];
    const unknownStages: Stage[] = [];
    for (let i = 0; i < compiled.length; i++) {
      const rule = compiled[i]!;
      unknownStages.length = 0;
      const r = rule.condition ? decideNode(rule.condition, ctx, unknownStages) : undefined;
      if (r?.result === 'false') continue;
      if (r?.result === 'unknown') {
        pending.push({ rule: rule.name, needs: nextNeed(unknownStages, rule) });
        continue;
      }
      const publishNeed = missingForPublish(rule, msg, headers !== undefined);
      if (publishNeed) {
        pending.push({ rule: rule.name, needs: publishNeed });
        continue;
      }
      if (rule.command) {
        if (!headers) {
          pending.push({ rule: rule.name, needs: 'headers' });
          continue;
        }
        const reason = commandRefusal(rule.command, headers, now);
        if (reason) {
          refused.push({ rule: rule.name, reason: maskTokens(reason) });
          continue;
        }
      }
      matched.push({ rule, captures: r ? { ...r.captures } : {} });
      if (rule.stop) break;
    }
    return { matched, pending, decided: pending.length === 0, trace: [], refused };
  };

  /** `withTrace`: fill Evaluation.trace (test-rule); the poller's evaluations leave it empty and make no trace text. */
  const evaluateNow = (msg: MessageData, now: Date, withTrace: boolean): Evaluation => {
    if (!withTrace) return decide(msg, now);
    const headers = msg.headers ?? msg.full?.headers;
    const ctx: EvalContext = { msg, now, trustedAuthservIds: trusted, trace: true, ...(headers ? { headers } : {}) };
    const matched: RuleMatch[] = [];
    const pending: Evaluation['pending'] = [];
    const trace: RuleTrace[] = [];
    const refused: Evaluation['refused'] = [];
    let stoppedBy: string | undefined;
    for (const rule of compiled) {
      if (stoppedBy) {
        if (withTrace) trace.push({ rule: rule.name, result: 'skipped', note: `rule "${stoppedBy}" matched with stop: true`, conditions: [] });
        continue;
      }
      const conditions: ConditionTrace[] = [];
      const unknownStages: Stage[] = [];
      const hooks: EvalHooks = { unknown: (l) => unknownStages.push(l.stage) };
      if (withTrace) {
        hooks.trace = (t) => conditions.push({
          path: t.path,
          result: t.result === 'true' ? 'matched' : t.result === 'false' ? 'failed' : 'unknown',
          ...(t.test !== undefined ? { test: maskTokens(t.test) } : {}),
          ...(t.seen !== undefined ? { seen: maskTokens(t.seen) } : {}), // a shared secret may sit in the Subject
        });
      }
      const r = rule.condition ? evalNode(rule.condition, ctx, hooks) : { result: 'true' as const, captures: {} };
      if (r.result === 'false') {
        if (withTrace) trace.push({ rule: rule.name, result: 'failed', conditions });
        continue;
      }
      if (r.result === 'unknown') {
        const need = nextNeed(unknownStages, rule);
        pending.push({ rule: rule.name, needs: need });
        if (withTrace) trace.push({ rule: rule.name, result: 'unknown', note: `needs ${describeNeed(need)}`, conditions });
        continue;
      }
      const publishNeed = missingForPublish(rule, msg, headers !== undefined);
      if (publishNeed) {
        pending.push({ rule: rule.name, needs: publishNeed });
        if (withTrace) trace.push({ rule: rule.name, result: 'unknown', note: `conditions hold; publishing needs ${describeNeed(publishNeed)}`, conditions });
        continue;
      }
      if (rule.command) {
        if (!headers) {
          pending.push({ rule: rule.name, needs: 'headers' });
          if (withTrace) trace.push({ rule: rule.name, result: 'unknown', note: 'conditions hold; the command guards need TOP n 0 (headers)', conditions });
          continue;
        }
        const reason = commandRefusal(rule.command, headers, now);
        if (reason) {
          refused.push({ rule: rule.name, reason: maskTokens(reason) });
          if (withTrace) trace.push({ rule: rule.name, result: 'failed', note: `conditions hold, but the command is not acted on: ${maskTokens(reason)}`, conditions });
          continue;
        }
      }
      matched.push({ rule, captures: r.captures });
      const oversizeNote = msg.oversize && rule.fullForPublish ? 'oversize: published without the body' : undefined;
      if (withTrace) trace.push({ rule: rule.name, result: 'matched', ...(oversizeNote ? { note: oversizeNote } : {}), conditions });
      if (rule.stop) stoppedBy = rule.name;
    }
    return { matched, pending, decided: pending.length === 0, trace, refused };
  };

  return {
    rules: compiled,
    maxPreviewLines,
    usesListSize,
    evaluate(msg, now) {
      if (now) return evaluateNow(msg, now, true);
      // The poller asks again after each fetch stage; reuse the answer while the data is the same (and for 1 s after
      // the evaluation ended: stamped after evaluating, so that a slow evaluation is not run again at once). The size
      // counts only when a rule reads it: a LIST made for the alerts' `size` field then changes nothing.
      // A message known by its UID alone (before TOP): with no size rule its evaluation is the same for every message
      // and at any time (each leaf but a size one is unknown without headers), so it is made once.
      const { headers, preview, full, oversize, size } = msg;
      if (!usesListSize && !headers && !preview && !full && !oversize) return (blank ??= decide(msg, new Date()));
      const t = Date.now();
      const hit = cache.get(msg);
      // Object.is: a size not known yet is NaN (no LIST before a header-only rule needs it), and NaN !== NaN.
      if (hit && t - hit.at < 1000 && hit.headers === headers && hit.preview === preview && hit.full === full
        && hit.oversize === oversize && (!usesListSize || Object.is(hit.size, size))) return hit.ev;
      const ev = decide(msg, new Date(t));
      cache.set(msg, { headers, preview, full, oversize, size, at: Date.now(), ev });
      return ev;
    },
    wantsAttachment(a) {
      return compiled.some((r) => r.attachments && r.attachments.types.some((f) => f(a.contentType)) && (!r.attachments.filename || r.attachments.filename(a.filename ?? '')));
    },
  };
}

/** What a cached evaluation was made from, and when. */
interface CachedEvaluation extends Pick<MessageData, 'headers' | 'preview' | 'full' | 'oversize' | 'size'> { at: number; ev: Evaluation }

/** The cheapest stage that can settle the rule's unknown leaves. */
function nextNeed(unknown: Stage[], rule: CompiledRule): PendingNeed {
  let best: Stage = 'full';
  for (let i = 0; i < unknown.length; i++) if (STAGE_ORDER[unknown[i]!] < STAGE_ORDER[best]) best = unknown[i]!;
  if (best === 'preview') return { preview: Math.max(1, rule.previewLines) };
  if (best === 'size') return 'headers'; // cannot happen: the size is always known
  return best;
}

/** What a rule whose conditions hold still needs before its publications can be built, if anything. */
function missingForPublish(rule: CompiledRule, msg: MessageData, haveHeaders: boolean): PendingNeed | undefined {
  if (rule.publish.length > 0 && !haveHeaders) return 'headers';
  if (rule.publishUsesPreview && !msg.preview && !msg.full) {
    return { preview: rule.previewLines };
  }
  if (rule.fullForPublish && !msg.full && !msg.oversize) return 'full';
  return undefined;
}

export function describeNeed(n: Need): string {
  if (typeof n === 'object') return `TOP n ${n.preview} (preview)`;
  return n === 'size' ? 'nothing (LIST size)' : n === 'headers' ? 'TOP n 0 (headers)' : 'RETR (full message)';
}
