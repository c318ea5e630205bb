// Explains what the agent would do with one message (test-rule CLI and MQTT command): staged fetches, per-condition results, publications.
import { maskTokens } from '../log.js';
import { loadHeaderDecoder, parseHeaders } from '../message/headers.js';
import { enableOptimizingCompilers } from '../compiler-tiers.js';
import { MessageParseError } from '../message/errors.js';
import { parseMessage, type BodyLimits } from '../message/body.js';
import { firstBodyLines } from '../message/preview.js';
import { buildPublications, type Publication } from './build.js';
import type { RuleSet } from '../rules/engine.js';
import type { MessageData, RuleTrace } from '../rules/types.js';
import { fetchInStages } from '../rules/stage-planner.js';
import { isoTime } from '../iso-time.js';

export interface ExplainOptions {
  mailbox?: string;
  uid?: string;
  baseTopic?: string;
  /** The mailbox's max_message_size: larger messages are not retrieved (rules see oversize). */
  maxMessageSize?: number;
  now?: Date;
  bodyLimits?: BodyLimits;
}

export type FetchStep = 'nothing' | 'TOP 0' | `TOP ${number}` | 'RETR' | 'RETR refused (oversize)';

export interface ExplainedPublication {
  topic: string;
  kind: Publication['kind'];
  qos: 0 | 1 | 2;
  retain: boolean;
  /** The payload as text when it is valid UTF-8 and not an attachment; otherwise undefined. */
  payload?: string;
  bytes: number;
  userProperties?: Record<string, string>;
}

export interface ExplainedRule {
  rule: string;
  result: RuleTrace['result'];
  note?: string;
  conditions: RuleTrace['conditions'];
  publications: ExplainedPublication[];
}

export interface ExplainResult {
  /** Set when the message could not be parsed (a MessageParseError: limit or garbage): what the agent would log. */
  error?: { code: string; message: string };
  message: { subject: string; from: string; date: string | null; size: number; attachments: number; limitsExceeded: string[] };
  /** The fetches the agent would make, in order, replaying the staged evaluation (the first is always what LIST/UIDL give). */
  fetches: FetchStep[];
  /** The most expensive fetch: nothing, TOP 0, TOP N or RETR. */
  wouldFetch: FetchStep;
  decided: boolean;
  matched: string[];
  rules: ExplainedRule[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function asText(b: Buffer): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

/**
 * Parse the whole message, then replay the poller's staged evaluation on it through the same stage planner
 * (size → TOP 0 → TOP N → RETR), recording each fetch the agent would make; then report every rule's trace and the publications it would send
 * (rate limits are not applied here).
 */
export async function explainMessage(raw: Buffer, ruleSet: RuleSet, opts: ExplainOptions = {}): Promise<ExplainResult> {
  enableOptimizingCompilers(); // a whole message to parse: V8 may optimize from here on (compiler-tiers.ts)
  try {
    await loadHeaderDecoder();
    return await explainParsed(raw, ruleSet, opts);
  } catch (e) {
    if (!(e instanceof MessageParseError)) throw e;
    return {
      error: { code: e.code, message: e.message },
      message: { subject: '', from: '', date: null, size: raw.length, attachments: 0, limitsExceeded: [] },
      fetches: [], wouldFetch: 'nothing', decided: false, matched: [], rules: [],
    };
  }
}

async function explainParsed(raw: Buffer, ruleSet: RuleSet, opts: ExplainOptions): Promise<ExplainResult> {
  const now = opts.now ?? new Date();
  const msg: MessageData = { mailbox: opts.mailbox ?? 'test', uid: opts.uid ?? 'test-uid', msgNum: 1, size: raw.length };
  const fetches: FetchStep[] = [];
  await fetchInStages(ruleSet, [msg], { data: (m) => m, now }, async (stage) => {
    if (stage === 'headers') {
      msg.headers = parseHeaders(raw);
      fetches.push('TOP 0');
    } else if (stage === 'preview') {
      const lines = ruleSet.maxPreviewLines;
      msg.headers ??= parseHeaders(raw);
      msg.preview = { lines, text: firstBodyLines(raw, lines) };
      fetches.push(`TOP ${lines}`);
    } else if (opts.maxMessageSize !== undefined && raw.length > opts.maxMessageSize) {
      msg.oversize = true;
      fetches.push('RETR refused (oversize)');
    } else {
      msg.full = await parseMessage(raw, opts.bodyLimits);
      msg.headers ??= msg.full.headers;
      fetches.push('RETR');
    }
  });
  const ev = ruleSet.evaluate(msg, now);
  const rank = (f: FetchStep) => (f === 'RETR' ? 3 : f.startsWith('TOP') && f !== 'TOP 0' ? 2 : f === 'TOP 0' ? 1 : 0);
  const wouldFetch = fetches.reduce<FetchStep>((a, f) => (rank(f) > rank(a) ? f : a), 'nothing');

  const pubsByRule = new Map<string, ExplainedPublication[]>();
  if (ev.decided) {
    for (const m of ev.matched) {
      const pubs = buildPublications(m, msg, { baseTopic: opts.baseTopic ?? 'pop2mqtt', now });
      pubsByRule.set(m.rule.name, pubs.map((p) => {
        const text = p.kind === 'attachment' ? undefined : asText(p.payload);
        return {
          topic: p.topic, kind: p.kind, qos: p.qos, retain: p.retain, bytes: p.payload.length,
          ...(text !== undefined ? { payload: text } : {}),
          ...(p.properties?.userProperties ? { userProperties: p.properties.userProperties } : {}),
        };
      }));
    }
  }

  // For the summary, look at the whole message even when the agent would not have fetched it.
  const headers = msg.headers ?? parseHeaders(raw);
  const from = headers.from[0];
  return {
    message: {
      subject: maskTokens(headers.subject), // a shared-secret token may be in the Subject
      from: maskTokens(from ? (from.name ? `${from.name} <${from.address}>` : from.address) : ''),
      date: headers.date ? isoTime(headers.date) : null,
      size: raw.length,
      attachments: msg.full?.attachments.length ?? 0,
      limitsExceeded: msg.full?.limitsExceeded ?? [],
    },
    fetches,
    wouldFetch,
    decided: ev.decided,
    matched: ev.matched.map((m) => m.rule.name),
    rules: ev.trace.map((t) => ({
      rule: t.rule, result: t.result, ...(t.note ? { note: t.note } : {}), conditions: t.conditions, publications: pubsByRule.get(t.rule) ?? [],
    })),
  };
}

const MARK: Record<string, string> = { matched: '✓', failed: '✗', unknown: '?', skipped: '-' };

/** One-line-per-fact text for humans (pop2mqtt test-rule). Values are already capped and secrets masked. */
export function formatExplain(r: ExplainResult): string {
  const lines: string[] = [];
  if (r.error) return `cannot parse the message (${r.error.code}): ${r.error.message}; the agent would log this and retry, then leave the mail on the server`;
  lines.push(`message: ${JSON.stringify(r.message.subject)} from ${r.message.from || '(none)'}, ${r.message.size} bytes, date ${r.message.date ?? '(none or unparseable)'}`);
  if (r.message.limitsExceeded.length) lines.push(`limits exceeded: ${r.message.limitsExceeded.join(', ')}`);
  lines.push(`would fetch: ${r.wouldFetch}${r.fetches.length ? ` (steps: ${r.fetches.join(' → ')})` : ' (LIST size and UIDL suffice)'}`);
  lines.push(`matched: ${r.matched.length ? r.matched.join(', ') : '(no rule)'}${r.decided ? '' : ' — UNDECIDED'}`);
  for (const rule of r.rules) {
    lines.push('');
    lines.push(`${MARK[rule.result] ?? '?'} rule ${rule.rule}: ${rule.result}${rule.note ? ` (${rule.note})` : ''}`);
    for (const c of rule.conditions) {
      lines.push(`    ${MARK[c.result] ?? '?'} ${c.path}${c.test ? ` [${c.test}]` : ''}${c.seen !== undefined ? ` — seen: ${c.seen}` : ''}`);
    }
    for (const p of rule.publications) {
      const body = p.payload !== undefined ? p.payload : `<${p.bytes} bytes>`;
      lines.push(`    → ${p.kind} ${p.topic} qos=${p.qos}${p.retain ? ' retain' : ''}: ${body.length > 500 ? body.slice(0, 500) + '…' : body}`);
      if (p.userProperties) lines.push(`      properties: ${JSON.stringify(p.userProperties)}`);
    }
  }
  return lines.join('\n');
}
