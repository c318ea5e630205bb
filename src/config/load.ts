// Loads a config file: YAML → ${ENV}/!secret → zod validation → *_file secrets and paths; errors carry path and line.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { $ZodIssue } from 'zod/v4/core';
import { registerSecret, silentLogger } from '../log.js';
import type { Logger } from '../log.js';
import { ConfigError, formatPath } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { interpolate, OFFLINE_PLACEHOLDER } from './interpolate.js';
import { secretFileExposure } from './permissions.js';
import { ConfigSchema, SECRET_KEYS } from './schema.js';
import type { Config } from './schema.js';
import { closestKey, knownKeysAt } from './suggest.js';
import { parseYaml } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the config file. */
  file: string;
  /** Directory of the config file; relative paths in the config are resolved against it. */
  dir: string;
  /** Every secret value resolved, already passed to registerSecret(). */
  secrets: string[];
  warnings: string[];
}

export interface ParseOptions {
  /** Path of the config file (need not exist); decides `dir`. */
  file: string;
  /** Environment for ${VAR}; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** File read by `!secret name`; default secrets.yaml beside the config. */
  secretsFile?: string;
  /** For offline commands (test-rule): connection credentials that cannot be resolved are warnings, not errors. */
  offline?: boolean;
}

/** Read, validate and resolve a config file. Throws ConfigError. */
export async function loadConfig(file: string, opts: { env?: NodeJS.ProcessEnv; logger?: Logger; offline?: boolean } = {}): Promise<LoadedConfig> {
  const log = opts.logger ?? silentLogger;
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read config file ${abs}: ${(e as NodeJS.ErrnoException).code ?? 'error'}` }], { file: abs });
  }
  const loaded = parseConfigText(text, { file: abs, env: opts.env, offline: opts.offline });
  for (const w of loaded.warnings) log.warn(w);
  return loaded;
}

/** Validate config text (sync; used by tests and reload). `opts.file` locates relative paths and secrets.yaml. */
export function parseConfigText(text: string, opts: ParseOptions): LoadedConfig {
  const file = path.resolve(opts.file);
  const dir = path.dirname(file);
  const env = opts.env ?? process.env;
  const secretsFile = path.resolve(dir, opts.secretsFile ?? 'secrets.yaml');
  const fail = (issues: ConfigIssue[], secrets: Iterable<string> = []): never => {
    throw new ConfigError(issues, { file, secrets });
  };

  const { source, issues: yamlIssues } = parseYaml(text);
  if (!source) return fail(yamlIssues);

  const interp = interpolate(source, { env, secretsFile, offline: opts.offline });
  const secrets = interp.secrets;
  const warnings = [...interp.warnings];
  for (const s of secrets) registerSecret(s);
  if (interp.issues.length) fail(interp.issues, secrets);

  const raw: unknown = source.doc.toJS({ maxAliasCount: 1000 });
  if (raw === null || raw === undefined) fail([{ path: '', message: 'config is empty: expected at least mqtt and mailboxes' }]);
  if (typeof raw !== 'object' || Array.isArray(raw)) fail([{ path: '', message: 'config must be a map of keys (mqtt:, mailboxes:, ...)', line: 1 }]);

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) fail(zodIssues(parsed.error.issues, raw, source), secrets);
  const config = parsed.data!;

  // MQTT credentials in the URL are secrets too.
  try {
    const pw = new URL(config.mqtt.url).password;
    if (pw) secrets.add(decodeURIComponent(pw));
  } catch {
    // the schema has checked the URL
  }

  const fileIssues = resolveFiles(config, dir, source, secrets, warnings, opts.offline === true);
  for (const s of secrets) registerSecret(s);
  if (fileIssues.length) fail(fileIssues, secrets);

  if (interp.literalSecret) {
    const exposure = secretFileExposure(file);
    if (exposure) warnings.push(`config file ${file} holds a secret and ${exposure}, or move the secret to an environment variable, a *_file or secrets.yaml`);
  }
  config.mailboxes.forEach((m, i) => {
    if (m.tls === 'none' && m.allow_insecure_auth) {
      warnings.push(`mailboxes[${i}] (${m.id}): tls: none with allow_insecure_auth: true sends a cleartext password on every poll`);
    }
  });
  if (config.rules.length === 0) warnings.push('no rules: mail is tracked but nothing will be published');

  return { config, file, dir, secrets: [...secrets], warnings };
}

/** Turn zod issues into ConfigIssues: one per unknown key (with a hint), "missing" for absent keys, lines from the YAML. */
function zodIssues(issues: readonly $ZodIssue[], raw: unknown, source: YamlSource): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const p = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(ConfigSchema, p);
      for (const key of issue.keys) {
        const hint = closestKey(key, known);
        out.push({
          path: formatPath([...p, key]),
          message: `unknown key${hint ? ` (did you mean "${hint}"?)` : known.length ? ` (allowed: ${known.join(', ')})` : ''}`,
          line: source.lineOf([...p, key]),
          input: valueAt(raw, [...p, key]),
        });
      }
      continue;
    }
    const missing = issue.code === 'invalid_type' && valueAt(raw, p) === undefined;
    out.push({
      path: formatPath(p),
      message: missing ? `missing required key${issue.expected ? ` (${issue.expected})` : ''}` : issue.message,
      line: source.lineOf(p),
      input: valueAt(raw, p), // the only value the message can quote; ConfigError masks the secrets in it

    });
  }
  return out;
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/**
 * Read every `<secret>_file` into its secret key, and make file paths (state_dir, *_file) absolute
 * against the config directory. Rules are left alone: their keys belong to the rule language.
 */
function resolveFiles(config: Config, dir: string, source: YamlSource, secrets: Set<string>, warnings: string[], offline: boolean): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  config.state_dir = path.resolve(dir, config.state_dir);
  const visit = (obj: Record<string, unknown>, at: PropertyKey[]) => {
    for (const [key, value] of Object.entries(obj)) {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        visit(value as Record<string, unknown>, [...at, key]);
        continue;
      }
      if (!key.endsWith('_file') || typeof value !== 'string') continue;
      const abs = path.resolve(dir, value);
      obj[key] = abs;
      const secretKey = key.slice(0, -'_file'.length);
      if (!(SECRET_KEYS as readonly string[]).includes(secretKey)) continue;
      const keyPath = [...at, key];
      let content: string;
      try {
        content = readFileSync(abs, 'utf8');
      } catch (e) {
        const message = `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`;
        if (offline) {
          obj[secretKey] = OFFLINE_PLACEHOLDER; // never sent anywhere offline
          warnings.push(`${formatPath(keyPath)}: ${message} (not needed offline)`);
        } else issues.push({ path: formatPath(keyPath), message, line: source.lineOf(keyPath) });
        continue;
      }
      content = content.replace(/[\r\n]+$/, '');
      if (content === '') {
        issues.push({ path: formatPath(keyPath), message: `${abs} is empty`, line: source.lineOf(keyPath) });
        continue;
      }
      secrets.add(content);
      obj[secretKey] = content;
      const exposure = secretFileExposure(abs);
      if (exposure) warnings.push(`${formatPath(keyPath)}: ${abs} holds a secret and ${exposure}`);
    }
  };
  visit(config.mqtt as unknown as Record<string, unknown>, ['mqtt']);
  config.mailboxes.forEach((m, i) => visit(m as unknown as Record<string, unknown>, ['mailboxes', i]));
  return issues;
}
