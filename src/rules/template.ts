// Safe `{{name}}` templates for topics, payloads and user properties: substitution only, no code; topic values are sanitised.

/** A value a template can insert. */
export type TemplateValue = string | number | boolean | null | undefined;
/** Variables for a template: a flat record (keys like "from.address", "header.x-foo" lower-cased after "header.") or a lookup. */
export type TemplateVars = Record<string, TemplateValue> | ((name: string) => TemplateValue);

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

export interface TemplatePlaceholder { name: string; filter?: 'json' }
export type TemplatePart = string | TemplatePlaceholder;

/** Variables every template may use besides the rule's named regex captures and `header.<Name>`. */
export const BUILTIN_VARIABLES = [
  'mailbox', 'rule', 'uid', 'id', 'from', 'from.address', 'from.name', 'to', 'subject', 'date', 'size',
  'message_id', 'body', 'preview',
] as const;

const NAME_RE = /^(?:[A-Za-z_][A-Za-z0-9_]*(?:\.(?:address|name))?|header\.[!-9;-~]+)$/;

/** Split a template into literal text and placeholders; throws TemplateError on `{{` without `}}`, bad names or filters. */
/** Parsed templates (config strings, so few): alerts render the same topic and payload templates again and again. */
const parsedTemplates = new Map<string, readonly TemplatePart[]>();
const PARSED_TEMPLATES_MAX = 256;

/** parseTemplate, remembered: the parts are shared, never changed by their users. */
function parsedTemplate(tpl: string): readonly TemplatePart[] {
  let parts = parsedTemplates.get(tpl);
  if (!parts) {
    parts = parseTemplate(tpl);
    if (parsedTemplates.size >= PARSED_TEMPLATES_MAX) parsedTemplates.clear();
    parsedTemplates.set(tpl, parts);
  }
  return parts;
}

export function parseTemplate(tpl: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let pos = 0;
  while (pos < tpl.length) {
    const open = tpl.indexOf('{{', pos);
    if (open < 0) {
      parts.push(tpl.slice(pos));
      break;
    }
    if (open > pos) parts.push(tpl.slice(pos, open));
    const close = tpl.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`"{{" at offset ${open} has no closing "}}"`);
    const inner = tpl.slice(open + 2, close).trim();
    const [rawName, ...filters] = inner.split('|').map((s) => s.trim());
    const name = rawName ?? '';
    if (!NAME_RE.test(name)) throw new TemplateError(`bad placeholder "{{${inner}}}": expected {{name}}, {{from.address}}, {{header.X-Name}} or {{name|json}}`);
    if (filters.length > 1 || (filters.length === 1 && filters[0] !== 'json')) {
      throw new TemplateError(`unknown filter in "{{${inner}}}": the only filter is |json`);
    }
    parts.push(filters.length ? { name, filter: 'json' } : { name });
    pos = close + 2;
  }
  return parts;
}

/** The placeholder names a template uses. */
export function templateVariables(tpl: string): string[] {
  return parseTemplate(tpl).filter((p): p is TemplatePlaceholder => typeof p !== 'string').map((p) => p.name);
}

/** True when `name` is a builtin, a header reference, or one of the given capture names. */
export function isKnownVariable(name: string, captures: Iterable<string>): boolean {
  if ((BUILTIN_VARIABLES as readonly string[]).includes(name)) return true;
  if (name.startsWith('header.')) return true;
  for (const c of captures) if (c === name) return true;
  return false;
}

function lookup(vars: TemplateVars, name: string): TemplateValue {
  if (typeof vars === 'function') return vars(name);
  if (name.startsWith('header.')) {
    const key = 'header.' + name.slice(7).toLowerCase();
    return Object.prototype.hasOwnProperty.call(vars, key) ? vars[key] : undefined;
  }
  return Object.prototype.hasOwnProperty.call(vars, name) ? vars[name] : undefined;
}

/** String.prototype.toWellFormed (Node 20 and later): V8's own replacement of lone surrogates, no regex. */
const toWellFormed = (String.prototype as { toWellFormed?: (this: string) => string }).toWellFormed;

/** Replace lone UTF-16 surrogates (from broken decoding) by U+FFFD so that every output is valid UTF-8. */
export function wellFormed(s: string): string {
  if (toWellFormed) return toWellFormed.call(s);
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Cut a string to at most `max` code points (never splitting a surrogate pair). */
export function capCodePoints(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  return cps.length <= max ? s : cps.slice(0, max).join('');
}

function valueText(v: TemplateValue): string {
  if (v === null || v === undefined) return '';
  return wellFormed(String(v));
}

/** Longest value inserted into a payload or property template (code points); `body` gets PAYLOAD_BODY_LIMIT. */
export const PAYLOAD_VALUE_LIMIT = 4096;
export const PAYLOAD_BODY_LIMIT = 64 * 1024;

/** Render a payload/property template: values inserted as text (capped), or as a JSON string literal with `|json`. */
export function renderTemplate(tpl: string, vars: TemplateVars): string {
  let out = '';
  for (const part of parsedTemplate(tpl)) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const raw = lookup(vars, part.name);
    const limit = part.name === 'body' || part.name === 'preview' ? PAYLOAD_BODY_LIMIT : PAYLOAD_VALUE_LIMIT;
    const text = capCodePoints(valueText(raw), limit);
    if (part.filter === 'json') out += typeof raw === 'number' || typeof raw === 'boolean' ? JSON.stringify(raw) : JSON.stringify(text);
    else out += text;
  }
  return wellFormed(out);
}

/** Longest value inserted into a topic, in code points. */
export const TOPIC_VALUE_LIMIT = 64;

/**
 * What a topic value may not carry: level separators and wildcards, C0 and C1 controls and DEL (\p{Cc}), invisible
 * format characters (\p{Cf}: right-to-left and other bidi overrides, zero-width space and joiners, the BOM, tag
 * characters), line and paragraph separators, and U+FFFD (the mark of broken decoding).
 */
const TOPIC_UNSAFE = /[/+#\p{Cc}\p{Cf}\p{Zl}\p{Zp}\uFFFD]/gu;

/** Make one value safe inside a topic level: each unsafe character (one code point) becomes "_". */
export function sanitizeTopicValue(v: TemplateValue): string {
  return capCodePoints(valueText(v), TOPIC_VALUE_LIMIT).replace(TOPIC_UNSAFE, '_');
}

/**
 * Render a topic template. Literal template text stays as written (the schema checks it); inserted values are
 * sanitised and capped, and any level that ends up empty, "." or ".." (only values can cause that) becomes "_",
 * so the result never starts with "/", never has empty levels and never has dot-dot levels.
 */
export function renderTopic(tpl: string, vars: TemplateVars): string {
  let out = '';
  for (const part of parsedTemplate(tpl)) {
    out += typeof part === 'string' ? part : sanitizeTopicValue(lookup(vars, part.name));
  }
  return out
    .split('/')
    .map((level) => (level === '' || level === '.' || level === '..' ? '_' : level))
    .join('/');
}

/** Return what is wrong with the literal text of a topic template, or null. Placeholders count as non-empty text. */
export function validateTopicTemplate(tpl: string): string | null {
  let parts: TemplatePart[];
  try {
    parts = parseTemplate(tpl);
  } catch (e) {
    return (e as Error).message;
  }
  const literal = parts.map((p) => (typeof p === 'string' ? p : 'x')).join('');
  if (literal.length === 0) return 'topic is empty';
  if (literal.startsWith('/')) return 'topic must not start with "/" (it is relative to mqtt.base_topic)';
  if (/[+#]/.test(literal)) return 'topic must not contain the MQTT wildcards + or #';
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(literal)) return 'topic must not contain NUL, control or invisible format characters (such as U+202E or U+200B)';
  if (literal.split('/').some((l) => l === '')) return 'topic must not contain empty levels ("//" or a trailing "/")';
  if (literal.split('/').some((l) => l === '.' || l === '..')) return 'topic must not contain "." or ".." levels';
  return null;
}
