// The error thrown for an invalid config: every problem with its key path (a.b[2].c) and YAML line; secrets masked only where the input is quoted.
import { markMasked } from '../log.js';

export interface ConfigIssue {
  /** Key path in `a.b[2].c` form; empty for the document itself. */
  path: string;
  message: string;
  /** 1-based line in the config file, when known. */
  line?: number;
  /** 1-based column, for YAML syntax errors. */
  column?: number;
  /**
   * The value found at `path`, which the message may quote (zod and our own refinements quote the offending value).
   * Used only to mask the secrets it holds, then dropped: it never stays on the error.
   */
  input?: unknown;
}

/** `['rules', 2, 'when']` → `rules[2].when`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** One issue as one line: `path: message (line N)`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? '' : issue.column === undefined ? ` (line ${issue.line})` : ` (line ${issue.line}, column ${issue.column})`;
  return issue.path ? `${issue.path}: ${issue.message}${where}` : `${issue.message}${where}`;
}

function stringsIn(v: unknown, out: string[] = [], depth = 0): string[] {
  if (typeof v === 'string') out.push(v);
  else if (typeof v === 'number') out.push(String(v)); // a numeric password pasted into a typed key (booleans cannot be one)
  else if (v && typeof v === 'object' && depth < 16) for (const x of Object.values(v)) stringsIn(x, out, depth + 1);
  return out;
}

/**
 * Field-aware masking of one issue. The path and the text we (or zod, or YAML) wrote are never masked: a password
 * `secret` must not turn `shared_secret` into `shared_***`. What a message can quote is the input at its path; each
 * secret found there (the value itself, or inside it: a URL with credentials, a cron field) is masked in the message.
 * A value that merely equals a secret (a mailbox id `home` with the password `home`) is masked too: a pasted
 * password and an id cannot be told apart.
 */
export function maskIssue(issue: ConfigIssue, secrets: ReadonlySet<string>): ConfigIssue {
  const { input, ...rest } = issue;
  if (input === undefined || secrets.size === 0) return rest;
  const found = new Set<string>();
  for (const s of stringsIn(input)) {
    if (secrets.has(s)) { found.add(s); continue; } // a secret leaf is masked whole, not the shorter secrets inside it
    for (const secret of secrets) if (secret.length >= 3 && s.includes(secret)) found.add(secret);
  }
  let message = rest.message;
  for (const s of [...found].sort((a, b) => b.length - a.length)) if (s.length >= 3) message = message.split(s).join('***');
  return { ...rest, message };
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  readonly file: string | undefined;

  constructor(issues: ConfigIssue[], opts: { file?: string; secrets?: Iterable<string> } = {}) {
    const secrets = new Set(opts.secrets ?? []);
    const masked = issues.map((i) => maskIssue(i, secrets));
    super(masked.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = masked;
    this.file = opts.file;
    markMasked(this);
  }
}
