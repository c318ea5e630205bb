// Logger used everywhere, and the secret registry: levelled one-line events whose field values are masked, never the text we write.
import { isoTime } from './iso-time.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
  /** False when debug() writes nothing: a hot path (the POP3 wire trace) then skips building its lines. */
  readonly debugEnabled?: boolean;
}

/**
 * Two kinds of secret, masked in different places:
 * - credentials (passwords, OAuth tokens, client secrets): may be a common word ("online", "home"), so they are
 *   masked only in text that comes from outside (server replies, library errors, log field values), never in
 *   text we write (log messages, key names, config paths, topics, discovery configs) and never in mail content;
 * - command tokens (`shared_secret`, at least 12 characters by schema): they arrive inside mail, so they are also
 *   masked in every MQTT publication (maskTokensInPublication, applied by MqttLink to everything it sends).
 */
const secrets = new Set<string>();
const tokens = new Set<string>();
/** Credentials and tokens with their base64 forms, longest first so a secret containing another is masked whole. */
let needles: string[] = [];
let tokenNeedles: string[] = [];

function rebuild(): void {
  const all = new Set<string>();
  for (const s of [...secrets, ...tokens]) {
    all.add(s);
    const b64 = Buffer.from(s).toString('base64').replace(/=+$/, '');
    if (b64.length >= 4) all.add(b64);
  }
  needles = [...all].sort((a, b) => b.length - a.length);
  const t = new Set<string>();
  // The raw token, and its JSON-escaped form (a token with " or \ appears escaped inside a JSON payload).
  for (const s of tokens) { t.add(s); t.add(JSON.stringify(s).slice(1, -1)); }
  tokenNeedles = [...t].sort((a, b) => b.length - a.length);
}

/** Register a credential: masked in log field values and external error text (redact()). */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 3 && !secrets.has(value)) { secrets.add(value); rebuild(); }
}

/** Register a command token (a rule's shared secret): masked like a credential, and in every publication. */
export function registerCommandToken(value: string | undefined | null): void {
  if (value && value.length >= 3 && !tokens.has(value)) { tokens.add(value); rebuild(); }
}

function replaceAll(text: string, list: readonly string[]): string {
  let out = text;
  for (const n of list) if (out.includes(n)) out = out.split(n).join('***');
  return out;
}

/**
 * Mask every credential and command token (and their base64 forms, as sent in SASL) in text that comes from
 * outside: a server reply, a library's error message, a log field value. Never call it on text we compose.
 */
export function redact(text: string): string {
  return needles.length ? replaceAll(text, needles) : text;
}

/** Mask command tokens only: for mail content (alerts, Home Assistant events, rule traces), where a password that is a common word must survive. */
export function maskTokens(text: string): string {
  return tokenNeedles.length ? replaceAll(text, tokenNeedles) : text;
}

/** Mask first, then cut to `max` code units with an ellipsis: a cut never leaves half a secret showing. */
export function clip(text: string, max: number, mask: (s: string) => string = redact): string {
  const masked = mask(text);
  return masked.length > max ? masked.slice(0, max) + '…' : masked;
}

const MASK = Buffer.from('***');

function maskBuffer(buf: Buffer): Buffer {
  let out = buf;
  for (const n of tokenNeedles) {
    const needle = Buffer.from(n, 'utf8');
    let at = out.indexOf(needle);
    if (at < 0) continue;
    const parts: Buffer[] = [];
    let from = 0;
    while (at >= 0) {
      parts.push(out.subarray(from, at), MASK);
      from = at + needle.length;
      at = out.indexOf(needle, from);
    }
    parts.push(out.subarray(from));
    out = Buffer.concat(parts);
  }
  return out;
}

/**
 * The one mask every MQTT publication passes (MqttLink.send): command tokens out of the topic, the payload and the
 * MQTT 5 user properties. Tokens are at least 12 characters, so topics, key names and discovery configs we build
 * never contain one; a payload without a token is returned as the very same Buffer.
 */
export function maskTokensInPublication<P extends string | Buffer>(
  topic: string, payload: P, userProperties?: Record<string, string>,
): { topic: string; payload: P; userProperties?: Record<string, string>; masked: boolean } {
  if (!tokenNeedles.length) return { topic, payload, ...(userProperties ? { userProperties } : {}), masked: false };
  const t = maskTokens(topic);
  const p = (typeof payload === 'string' ? maskTokens(payload) : maskBuffer(payload)) as P;
  let masked = t !== topic || p !== payload; // unchanged text is the same string, an unchanged Buffer the same object
  let props: Record<string, string> | undefined;
  if (userProperties) {
    props = {};
    for (const [k, v] of Object.entries(userProperties)) {
      const mk = maskTokens(k);
      const mv = maskTokens(v);
      if (mk !== k || mv !== v) masked = true;
      props[mk] = mv;
    }
  }
  return { topic: t, payload: p, ...(props ? { userProperties: props } : {}), masked };
}

/** Errors whose message was already masked field by field when they were made (ConfigError): shown as they are. */
const maskedErrors = new WeakSet<object>();

/** Mark an error whose message masks its own quoted input; redact() would only corrupt the text we wrote. */
export function markMasked<E extends Error>(err: E): E {
  maskedErrors.add(err);
  return err;
}

/** The message of an error, safe to log or publish: as it is when already masked, else with secrets masked. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return maskedErrors.has(err) ? err.message : redact(err.message);
  return redact(String(err));
}

/**
 * Field values we fill from the config or build ourselves (ids, names, topics): never masked, so a password equal
 * to a mailbox id or the base topic does not hide it. Everything else is assumed to carry outside text.
 */
const STRUCTURAL_FIELDS = new Set(['mailbox', 'rule', 'topic', 'filter', 'cmd', 'client_id', 'version', 'scope']);

function maskValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redact(v);
  if (v instanceof Error) return errorText(v);
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => maskValue(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = maskValue(x, depth + 1);
  return out;
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return /^[\w.:/@+*-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  timestamps?: boolean;
  /** text (default): one human line per event; json: one JSON object per line, same fields, for log shippers */
  format?: 'text' | 'json';
}

/** Keys of a JSON log line that fields cannot replace (a field of that name is written as field_<name>). */
const JSON_LOG_KEYS = new Set(['time', 'level', 'scope', 'msg']);

/**
 * Field-aware masking: the message and the field names are text we write and are never masked; field values
 * (strings, error messages, nested values) are, except the structural ones. A caller that puts outside text into the
 * message itself (the POP3 wire trace) masks it with redact() first.
 */
export function createLogger(opts: LoggerOptions = {}, scope = ''): Logger {
  const level = opts.level ?? ((process.env.POP2MQTT_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const ts = opts.timestamps ?? true;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < (ORDER[level] ?? 20)) return;
    if (opts.format === 'json') {
      const obj: Record<string, unknown> = { ...(ts ? { time: isoTime() } : {}), level: lvl, ...(scope ? { scope } : {}), msg };
      for (const [k, v] of Object.entries(fields ?? {})) {
        if (v !== undefined) obj[JSON_LOG_KEYS.has(k) ? `field_${k}` : k] = STRUCTURAL_FIELDS.has(k) && typeof v === 'string' ? v : maskValue(v);
      }
      write(JSON.stringify(obj));
      return;
    }
    let line = `${ts ? isoTime() + ' ' : ''}${lvl.toUpperCase().padEnd(5)} ${scope ? '[' + scope + '] ' : ''}${msg}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        line += ` ${k}=${fmt(STRUCTURAL_FIELDS.has(k) && typeof v === 'string' ? v : maskValue(v))}`;
      }
    }
    write(line);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (s) => createLogger({ level, write, timestamps: ts, format: opts.format }, scope ? `${scope}/${s}` : s),
    debugEnabled: ORDER.debug >= (ORDER[level] ?? 20),
  };
}

/** A logger that drops everything; for library callers that pass none. */
export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger; },
  debugEnabled: false,
};

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * The level a command logs at: POP2MQTT_LOG_LEVEL (debug | info | warn | error) when set, else the config's
 * log_level, else info. The environment wins so `POP2MQTT_LOG_LEVEL=debug pop2mqtt once ...` needs no config edit.
 */
export function effectiveLogLevel(configured?: string, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const fromEnv = env.POP2MQTT_LOG_LEVEL?.trim().toLowerCase();
  if (fromEnv && (LEVELS as readonly string[]).includes(fromEnv)) return fromEnv as LogLevel;
  return configured && (LEVELS as readonly string[]).includes(configured) ? (configured as LogLevel) : 'info';
}
