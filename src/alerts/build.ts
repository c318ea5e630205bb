// Turns a rule match into the MQTT publications: the JSON alert (or a template), user properties, attachment bytes and their metadata.
import { createHash } from 'node:crypto';
import { maskTokens } from '../log.js';
import { formatAddress } from '../message/headers.js';
import { previewText } from '../message/preview.js';
import type { MessageData, RuleMatch } from '../rules/types.js';
import { capCodePoints, renderTemplate, renderTopic, wellFormed, type TemplateValue } from '../rules/template.js';
import { DEFAULT_PREVIEW_LINES } from '../rules/engine.js';
import { isoTime } from '../iso-time.js';

export interface Publication {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  properties?: { userProperties?: Record<string, string> };
  kind: 'alert' | 'attachment' | 'attachment-meta';
  alertId: string;
}

export interface BuildContext {
  /** mqtt.base_topic, prefixed to every topic (trailing "/" ignored). */
  baseTopic: string;
  /** Alerts of this rule suppressed by its rate limit since the last one (reported as `suppressed`). */
  suppressed?: number;
  now: Date;
}

/** Longest string field of the default JSON alert, in code points; longer values are cut and listed in `truncated`. */
export const ALERT_FIELD_LIMIT = 4096;

/** Keys of the default alert that a named capture can never replace. */
export const RESERVED_ALERT_KEYS = new Set([
  'id', 'mailbox', 'rule', 'uid', 'from', 'from_address', 'to', 'subject', 'date', 'size', 'message_id', 'captures',
  'oversize', 'suppressed', 'preview', 'truncated', 'action', 'time',
]);

/** Stable alert id: the same mail (mailbox + UIDL) and rule always give the same 16 hex digits. */
export function alertId(mailbox: string, uid: string, rule: string): string {
  return createHash('sha256').update(JSON.stringify([mailbox, uid, rule])).digest('hex').slice(0, 16);
}

/** Every message-derived string goes through here, before any cap: valid UTF-16 (so valid UTF-8 out) and command tokens masked (a password that is a common word must not corrupt mail text). */
function clean(s: string): string {
  return maskTokens(wellFormed(s));
}

function joinTopic(base: string, rel: string): string {
  const b = base.replace(/\/+$/, '');
  return b ? `${b}/${rel}` : rel;
}

/** MQTT user property keys and values are UTF-8 strings without NUL; control characters are replaced too. */
function propertyText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return capCodePoints(s, ALERT_FIELD_LIMIT).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '_');
}

/** The preview text a match can report: from TOP n N, else the first lines of the retrieved text. */
function previewOf(m: RuleMatch, msg: MessageData): string | undefined {
  return previewText(msg, m.rule.previewLines || DEFAULT_PREVIEW_LINES, false);
}

/** The template variables of one match (captures, then mailbox, rule, uid, id, from, subject, header.<Name>, ...). */
export function matchVars(m: RuleMatch, msg: MessageData): (name: string) => TemplateValue {
  return varsOf(m, msg, alertId(msg.mailbox, msg.uid, m.rule.name), cleanCaptures(m), previewOf(m, msg));
}

/** A match's captures, each through clean(). */
function cleanCaptures(m: RuleMatch): Record<string, string> {
  const captures: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.captures)) captures[k] = clean(v);
  return captures;
}

/** matchVars with the alert id, cleaned captures and preview already at hand (buildPublications has them). */
function varsOf(m: RuleMatch, msg: MessageData, id: string, captures: Record<string, string>, preview: string | undefined): (name: string) => TemplateValue {
  const rule = m.rule;
  const h = msg.headers ?? msg.full?.headers;
  const from = h?.from[0];

  return (name: string): TemplateValue => {
    if (Object.prototype.hasOwnProperty.call(captures, name)) return captures[name];
    if (name.startsWith('header.')) {
      const v = h?.first(name.slice(7));
      return v === undefined ? undefined : clean(v);
    }
    switch (name) {
      case 'mailbox': return msg.mailbox;
      case 'rule': return rule.name;
      case 'uid': return clean(msg.uid);
      case 'id': return id;
      case 'from': return from ? clean(formatAddress(from)) : undefined;
      case 'from.address': return from ? clean(from.address) : undefined;
      case 'from.name': return from ? clean(from.name) : undefined;
      case 'to': return h ? clean(h.to.map((a) => a.address).join(', ')) : undefined;
      case 'subject': return h ? clean(h.subject) : undefined;
      case 'date': return h?.date ? isoTime(h.date) : undefined;
      case 'size': return msg.size;
      case 'message_id': return h?.messageId !== undefined ? clean(h.messageId) : undefined;
      case 'body': return msg.full ? clean(msg.full.text) : undefined;
      case 'preview': return preview === undefined ? undefined : clean(preview);
      default: return undefined;
    }
  };
}

/** Build every publication of one match. Never throws on hostile content; topics never leave `baseTopic`. */
export function buildPublications(m: RuleMatch, msg: MessageData, ctx: BuildContext): Publication[] {
  const rule = m.rule;
  const id = alertId(msg.mailbox, msg.uid, rule.name);
  const captures = cleanCaptures(m);
  const preview = previewOf(m, msg);
  const vars = varsOf(m, msg, id, captures, preview);

  const out: Publication[] = [];
  for (const spec of rule.publish) {
    const topic = joinTopic(ctx.baseTopic, renderTopic(spec.topic, vars));
    const payload = spec.payload === 'default'
      ? Buffer.from(JSON.stringify(defaultAlert(m, msg, ctx, id, captures, preview)), 'utf8')
      : Buffer.from(renderTemplate(spec.payload, vars), 'utf8');
    const pub: Publication = { topic, payload, qos: spec.qos, retain: spec.retain, kind: 'alert', alertId: id };
    const props = Object.entries(spec.properties);
    if (props.length) {
      const userProperties: Record<string, string> = {};
      for (const [k, tpl] of props) userProperties[propertyText(k)] = propertyText(renderTemplate(tpl, vars));
      pub.properties = { userProperties };
    }
    out.push(pub);
  }

  const att = rule.attachments;
  if (att && msg.full) {
    const topic = joinTopic(ctx.baseTopic, renderTopic(att.topic, vars));
    const chosen = msg.full.attachments.filter(
      (a) => a.content !== undefined && a.size <= att.maxSize && att.types.some((t) => t(a.contentType)) && (!att.filename || att.filename(a.filename ?? '')),
    ).slice(0, att.maxCount);
    chosen.forEach((a, index) => {
      out.push({ topic, payload: a.content!, qos: att.qos, retain: att.retain, kind: 'attachment', alertId: id });
      const meta = {
        id, mailbox: msg.mailbox, rule: rule.name, uid: clean(msg.uid), index, count: chosen.length,
        filename: a.filename === undefined ? null : clean(capCodePoints(a.filename, 255)),
        content_type: clean(capCodePoints(a.contentType, 255)), size: a.size, sha256: a.sha256,
      };
      out.push({ topic: `${topic}/meta`, payload: Buffer.from(JSON.stringify(meta), 'utf8'), qos: att.qos, retain: att.retain, kind: 'attachment-meta', alertId: id });
    });
  }
  return out;
}

/** The default JSON alert. Named captures are copied to the top level unless they would replace a reserved key. */
function defaultAlert(m: RuleMatch, msg: MessageData, ctx: BuildContext, id: string, captures: Record<string, string>, preview: string | undefined): Record<string, unknown> {
  const h = msg.headers ?? msg.full?.headers;
  const from = h?.from[0];
  const truncated: string[] = [];
  const cap = (field: string, s: string): string => {
    const c = capCodePoints(s, ALERT_FIELD_LIMIT);
    if (c.length < s.length) truncated.push(field);
    return c;
  };
  const alert: Record<string, unknown> = {
    id,
    mailbox: msg.mailbox,
    rule: m.rule.name,
    uid: cap('uid', clean(msg.uid)),
    from: from ? cap('from', clean(formatAddress(from))) : null,
    from_address: from ? cap('from_address', clean(from.address)) : null,
    to: h ? h.to.slice(0, 50).map((a, i) => cap(`to[${i}]`, clean(a.address))) : [],
    subject: h ? cap('subject', clean(h.subject)) : null,
    date: h?.date ? isoTime(h.date) : null,
    size: msg.size,
    time: isoTime(ctx.now),
  };
  const capturesOut: Record<string, string> = {};
  for (const [k, v] of Object.entries(captures)) {
    const c = cap(`captures.${k}`, v);
    capturesOut[k] = c;
    if (!RESERVED_ALERT_KEYS.has(k)) alert[k] = c;
  }
  alert.captures = capturesOut;
  if (m.rule.action) alert.action = true;
  if (msg.oversize) alert.oversize = true;
  if (ctx.suppressed) alert.suppressed = ctx.suppressed;
  if (preview !== undefined && m.rule.previewLines > 0) alert.preview = cap('preview', clean(preview));
  if (truncated.length) alert.truncated = truncated;
  return alert;
}
