// Replaces ${VAR} references and `!secret name` tags in the parsed YAML, and records which values are secrets.
import { readFileSync } from 'node:fs';
import { isScalar, parse as parseYamlValue } from 'yaml';
import type { ConfigIssue } from './errors.js';
import { formatPath } from './errors.js';
import { secretFileExposure } from './permissions.js';
import { SECRET_KEYS } from './schema.js';
import { SecretRef, walkDocument } from './yaml-source.js';
import type { PathSegment, YamlSource } from './yaml-source.js';

/** Keys whose value is a number or boolean: a whole unquoted `${VAR}` there is converted to that type. */
const TYPED_KEYS = new Set([
  'port', 'version', 'protocol_version', 'qos', 'max_messages', 'max_attempts_per_hour',
  'keep', 'pipelining', 'fast_uidl', 'discovery', 'allow_insecure_auth', 'retain',
]);

/** Environment variable names whose values are treated as secrets wherever they are used. */
const SECRET_VAR_NAME = /pass|secret|token|key|cred|pwd/i;

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface InterpolationResult {
  issues: ConfigIssue[];
  warnings: string[];
  /** Every secret value seen: from secret keys, secret-looking variables and secrets.yaml. */
  secrets: Set<string>;
  /** True when the config text itself holds a secret (a literal password and the like). */
  literalSecret: boolean;
}

export interface InterpolationOptions {
  env: NodeJS.ProcessEnv;
  /** Absolute path of the secrets.yaml read for `!secret name`. */
  secretsFile: string;
  /**
   * Offline use (test-rule): a connection credential (password, client_secret, refresh_token outside `rules`) whose
   * variable is not set or whose `!secret` cannot be read becomes OFFLINE_PLACEHOLDER instead of an error.
   */
  offline?: boolean;
}

/** Stands in for a credential an offline command never sends anywhere. */
export const OFFLINE_PLACEHOLDER = 'unset-offline';

/** A credential of a connection (not a rule's shared secret, which offline evaluation needs). */
export const isConnectionCredential = (path: PathSegment[]) =>
  path[0] !== 'rules' && (SECRET_KEYS as readonly string[]).includes(String(path[path.length - 1]));

/** A value is a secret when its key is a secret key, or it is a rule's `shared_secret.secret`. */
const isSecretKey = (path: PathSegment[]) =>
  (SECRET_KEYS as readonly string[]).includes(String(path[path.length - 1])) ||
  (path[path.length - 1] === 'secret' && path[path.length - 2] === 'shared_secret');

/** Replace `${NAME}` by env values; `$${` is a literal `${`. */
export function substituteEnv(
  text: string,
  env: NodeJS.ProcessEnv,
): { value: string; vars: { name: string; value: string }[]; errors: string[] } {
  let out = '';
  const vars: { name: string; value: string }[] = [];
  const errors: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (text.startsWith('${', i)) {
      const end = text.indexOf('}', i + 2);
      if (end < 0) {
        errors.push('unterminated ${ reference: write ${NAME}, or $${ for a literal ${');
        break;
      }
      const name = text.slice(i + 2, end);
      if (!VAR_NAME.test(name)) {
        errors.push(`invalid reference \${${name}}: a variable name is letters, digits and _ (write $\${ for a literal \${)`);
      } else if (env[name] === undefined) {
        errors.push(`environment variable ${name} is not set`);
      } else {
        const value = env[name]!;
        vars.push({ name, value });
        out += value;
      }
      i = end + 1;
    } else {
      out += text[i];
      i += 1;
    }
  }
  return { value: out, vars, errors };
}

/** Mutates the document: every string scalar gets its env references replaced, every !secret its value. */
export function interpolate(source: YamlSource, opts: InterpolationOptions): InterpolationResult {
  const result: InterpolationResult = { issues: [], warnings: [], secrets: new Set(), literalSecret: false };
  let secretsTable: Map<string, string> | undefined;
  let secretsError: string | undefined;

  const loadSecretsFile = (): Map<string, string> | undefined => {
    if (secretsTable || secretsError) return secretsTable;
    let text: string;
    try {
      text = readFileSync(opts.secretsFile, 'utf8');
    } catch (e) {
      secretsError = `cannot read secrets file ${opts.secretsFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`;
      return undefined;
    }
    let data: unknown;
    try {
      data = parseYamlValue(text);
    } catch (e) {
      // The YAML message may quote the file's content: never repeat it.
      const pos = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
      secretsError = `cannot parse secrets file ${opts.secretsFile}${pos ? ` (line ${pos})` : ''}`;
      return undefined;
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      secretsError = `secrets file ${opts.secretsFile} must be a map of name: value`;
      return undefined;
    }
    secretsTable = new Map();
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') secretsTable.set(k, String(v));
    }
    const exposure = secretFileExposure(opts.secretsFile);
    if (exposure) result.warnings.push(`secrets file ${opts.secretsFile} ${exposure}`);
    return secretsTable;
  };

  walkDocument(source.doc, (node, path) => {
    if (!isScalar(node)) return;
    const offlineStandIn = opts.offline === true && isConnectionCredential(path);
    const issue = (message: string) => {
      if (offlineStandIn) {
        node.value = OFFLINE_PLACEHOLDER;
        result.warnings.push(`${formatPath(path)}: ${message} (not needed offline)`);
        return;
      }
      result.issues.push({ path: formatPath(path), message, line: source.lineOf(path) });
    };

    if (node.value instanceof SecretRef) {
      const name = node.value.name;
      const table = loadSecretsFile();
      if (!table) return issue(`!secret ${name}: ${secretsError}`);
      const value = table.get(name);
      if (value === undefined) return issue(`!secret ${name}: no such key in ${opts.secretsFile}`);
      result.secrets.add(value);
      node.value = value;
      return;
    }
    if (typeof node.value !== 'string') return;
    const original = node.value;
    if (!original.includes('${')) {
      if (isSecretKey(path) && original !== '') {
        result.secrets.add(original);
        result.literalSecret = true;
      }
      return;
    }
    const { value, vars, errors } = substituteEnv(original, opts.env);
    if (errors.length && offlineStandIn) return issue(errors.join('; '));
    for (const e of errors) issue(e);
    for (const v of vars) if (isSecretKey(path) || SECRET_VAR_NAME.test(v.name)) result.secrets.add(v.value);
    if (errors.length) return;
    node.value = value;
    const whole = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(original);
    if (whole && node.type === 'PLAIN' && TYPED_KEYS.has(String(path[path.length - 1]))) {
      try {
        const typed: unknown = parseYamlValue(value);
        if (typeof typed === 'number' || typeof typed === 'boolean') node.value = typed;
      } catch {
        // leave it a string; the schema reports the wrong type
      }
    }
  });
  return result;
}
