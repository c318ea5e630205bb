// Shared types of the rule engine: message data by fetch stage, compiled rules, evaluation results and traces.
import type { ParsedHeaders } from '../message/headers.js';
import type { ParsedMessage } from '../message/body.js';
import type { RuleConfig } from './schema.js';
import type { RateLimitSpec } from './rate-limit.js';
import type { Matcher } from './match.js';

/** The data a rule needs, cheapest first: LIST size only < TOP n 0 < TOP n N < RETR. */
export type Need = 'size' | 'headers' | { preview: number } | 'full';
/** What an undecided rule needs next. */
export type PendingNeed = 'headers' | { preview: number } | 'full';

export interface MessageData {
  mailbox: string;
  uid: string;
  msgNum: number;
  size: number;
  headers?: ParsedHeaders;
  /** Raw first body lines from TOP n lines (lines = the N asked for). */
  preview?: { lines: number; text: string };
  full?: ParsedMessage;
  /** RETR was refused by max_message_size: body-level conditions are false and alerts say oversize. */
  oversize?: boolean;
}

export interface PublishSpec {
  topic: string;
  payload: 'default' | string;
  qos: 0 | 1 | 2;
  retain: boolean;
  properties: Record<string, string>;
}

export interface AttachmentPublishSpec {
  topic: string;
  types: ((contentType: string) => boolean)[];
  filename?: (name: string) => boolean;
  maxSize: number;
  maxCount: number;
  qos: 0 | 1 | 2;
  retain: boolean;
}

export interface CompiledRule {
  name: string;
  /** Position in the configured rule list. */
  index: number;
  /** The most this rule can need (conditions and what its publications use). */
  needs: Need;
  publish: PublishSpec[];
  attachments?: AttachmentPublishSpec;
  stop: boolean;
  then?: 'keep' | 'delete';
  rateLimit?: RateLimitSpec;
  action: boolean;
  /** Guards of an action rule (absent otherwise): Date window and how long a Message-ID it acted on is remembered. */
  command?: CommandGuard;
  /** The rule needs the full message for its publications (body: true, attachments, {{body}}). */
  fullForPublish: boolean;
  /** Preview lines the rule uses (conditions and {{preview}}); 0 when none. */
  previewLines: number;
  /** A template uses {{preview}}: the preview is fetched before publishing. */
  publishUsesPreview: boolean;
  condition?: CondNode;
  config: RuleConfig;
  /** The rule has a `size` condition (LIST size needed before anything else). */
  usesListSize: boolean;
}

export interface CommandGuard {
  maxAgeMs: number;
  maxFutureMs: number;
  replayWindowMs: number;
}

export type Tri = 'true' | 'false' | 'unknown';
export type Stage = 'size' | 'headers' | 'preview' | 'full';

/** Everything a condition may read, resolved once per evaluation. */
export interface EvalContext {
  msg: MessageData;
  headers?: ParsedHeaders;
  now: Date;
  trustedAuthservIds: readonly string[];
  /** Cache for values that several leaves read (authentication decision, preview text); made by the first of them. */
  memo?: Map<string, unknown>;
  /** A trace is being made (test-rule, explain): leaves say what they saw; without it they make no text for it. */
  trace?: boolean;
}

/** A leaf's result; `seen` (for the trace) may be a function, so that its text is made only when a trace is wanted. */
export interface LeafResult { result: Tri; seen?: string | (() => string); captures?: Record<string, string> }

export type CondNode =
  | { kind: 'leaf'; path: string; stage: Stage; previewLines?: number; describe: string; test: (ctx: EvalContext) => LeafResult }
  | { kind: 'all' | 'any'; path: string; children: CondNode[] }
  | { kind: 'not'; path: string; child: CondNode };

export interface ConditionTrace {
  /** Where the condition sits, e.g. "when.subject" or "when.any[1].body". */
  path: string;
  result: 'matched' | 'failed' | 'unknown';
  /** What was tested, e.g. `contains "x"`. */
  test?: string;
  /** The value seen (capped), or why it is unknown. Never a secret. */
  seen?: string;
}

export interface RuleTrace {
  rule: string;
  result: 'matched' | 'failed' | 'unknown' | 'skipped';
  /** Why: skipped after a stop rule, waiting for data, oversize... */
  note?: string;
  conditions: ConditionTrace[];
}

export interface RuleMatch {
  rule: CompiledRule;
  captures: Record<string, string>;
}

export interface Evaluation {
  matched: RuleMatch[];
  pending: { rule: string; needs: PendingNeed }[];
  decided: boolean;
  trace: RuleTrace[];
  /** Action rules whose conditions held but whose mail is not acted on (Date out of its window, no Message-ID). */
  refused: { rule: string; reason: string }[];
}

export type { Matcher };
