// The error thrown for an invalid config: every problem with its key path (a.b[2].c) and YAML line, secrets masked.
import { redact } from '../log.js';

export interface ConfigIssue {
  /** Key path in `a.b[2].c` form; empty for the document itself. */
  path: string;
  message: string;
  /** 1-based line in the config file, when known. */
  line?: number;
  /** 1-based column, for YAML syntax errors. */
  column?: number;
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

/** Replace every given secret (and every registered one) in a text by `***`. */
export function maskSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3 && out.includes(s)) out = out.split(s).join('***');
  return redact(out);
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  readonly file: string | undefined;

  constructor(issues: ConfigIssue[], opts: { file?: string; secrets?: Iterable<string> } = {}) {
    const secrets = [...(opts.secrets ?? [])];
    const masked = issues.map((i) => ({ ...i, message: maskSecrets(i.message, secrets), path: maskSecrets(i.path, secrets) }));
    super(masked.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = masked;
    this.file = opts.file;
  }
}
