// Logger used everywhere: levelled, one line per event, and it masks registered secrets before anything is written.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

const secrets = new Set<string>();

/** Register a secret value; every later log line, error text and MQTT payload passed through redact() has it masked. */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 3) secrets.add(value);
}

/** Mask every registered secret (and its base64 form, as sent in SASL) in a string. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join('***');
    const b64 = Buffer.from(s).toString('base64').replace(/=+$/, '');
    if (b64.length >= 4 && out.includes(b64)) out = out.split(b64).join('***');
  }
  return out;
}

function fmt(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /^[\w.:/@+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  timestamps?: boolean;
}

export function createLogger(opts: LoggerOptions = {}, scope = ''): Logger {
  const level = opts.level ?? ((process.env.POP2MQTT_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const ts = opts.timestamps ?? true;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < (ORDER[level] ?? 20)) return;
    let line = `${ts ? new Date().toISOString() + ' ' : ''}${lvl.toUpperCase().padEnd(5)} ${scope ? '[' + scope + '] ' : ''}${msg}`;
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${fmt(v)}`;
    write(redact(line));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (s) => createLogger({ level, write, timestamps: ts }, scope ? `${scope}/${s}` : s),
  };
}

/** A logger that drops everything; for library callers that pass none. */
export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger; },
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
