// The Home Assistant add-on's options (/data/options.json) and the Supervisor's MQTT service mapped to a pop2mqtt config, with secrets kept in files.
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

/** One mailbox as the add-on UI edits it (see homeassistant-addon/pop2mqtt/config.yaml, `schema:`). */
export interface AddonMailbox {
  id: string;
  host: string;
  port?: number;
  tls?: 'implicit' | 'starttls' | 'none';
  /** Extra CA (PEM) for a private server, e.g. under /ssl (the add-on maps Home Assistant's ssl folder read-only). */
  ca_file?: string;
  username: string;
  password: string;
  auth?: string;
  schedule?: string;
  keep?: boolean;
  existing?: 'skip' | 'process';
}

export interface AddonOptions {
  mailboxes: AddonMailbox[];
  /** The rules as YAML text: a list, exactly as under `rules:` in a config file. */
  rules: string;
  log_level?: 'debug' | 'info' | 'warn' | 'error';
  discovery?: boolean;
  base_topic?: string;
}

/** GET /services/mqtt's `data`, as the Supervisor serves it (supervisor/services/modules/mqtt.py). */
export interface MqttService {
  host: string;
  port: number;
  ssl?: boolean;
  protocol?: string;
  username?: string;
  password?: string;
}

export class AddonOptionsError extends Error {}

export interface AddonFiles {
  /** The config, YAML text. */
  config: string;
  /** Secret files: name (relative to the secrets directory) -> content. */
  secrets: Record<string, string>;
}

const MAILBOX_KEYS = new Set(['id', 'host', 'port', 'tls', 'ca_file', 'username', 'password', 'auth', 'schedule', 'keep', 'existing']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape the Supervisor already enforced (so a hand-edited options.json still gives a clear error). */
export function parseAddonOptions(raw: unknown): AddonOptions {
  if (!isRecord(raw)) throw new AddonOptionsError('options.json: expected an object');
  const mailboxes = raw.mailboxes ?? [];
  if (!Array.isArray(mailboxes)) throw new AddonOptionsError('options: mailboxes must be a list');
  mailboxes.forEach((m, i) => {
    if (!isRecord(m)) throw new AddonOptionsError(`options: mailboxes[${i}] must be an object`);
    for (const k of ['id', 'host', 'username', 'password']) {
      if (typeof m[k] !== 'string' || m[k] === '') throw new AddonOptionsError(`options: mailboxes[${i}].${k} is required`);
    }
    for (const k of Object.keys(m)) if (!MAILBOX_KEYS.has(k)) throw new AddonOptionsError(`options: mailboxes[${i}].${k} is not a known key`);
  });
  if (raw.rules !== undefined && typeof raw.rules !== 'string') throw new AddonOptionsError('options: rules must be YAML text (a string)');
  return {
    mailboxes: mailboxes as AddonMailbox[],
    rules: (raw.rules as string | undefined) ?? '',
    log_level: raw.log_level as AddonOptions['log_level'],
    discovery: raw.discovery as boolean | undefined,
    base_topic: raw.base_topic as string | undefined,
  };
}

function parseRules(text: string): unknown[] {
  if (!text.trim()) return [];
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    // The YAML library's message names line and column; the text itself never goes into the error.
    throw new AddonOptionsError(`options: rules is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (isRecord(doc) && Array.isArray(doc.rules)) doc = doc.rules; // also accept "rules:\n  - ..." pasted whole
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) throw new AddonOptionsError('options: rules must be a YAML list of rules (each starting with "- name: ...")');
  return doc;
}

/**
 * The config for the add-on: mailboxes and rules from the options, the broker from the Supervisor's MQTT service,
 * state under dataDir/state, discovery on unless switched off. Passwords go to secret files (password_file), so
 * they never sit in the config text and `${...}` in a password is never taken for a variable.
 */
export function addonConfig(options: AddonOptions, mqtt: MqttService, dataDir: string, secretsDir: string): AddonFiles {
  const secrets: Record<string, string> = {};
  const mqttConfig: Record<string, unknown> = {
    url: `${mqtt.ssl ? 'mqtts' : 'mqtt'}://${mqtt.host.includes(':') ? `[${mqtt.host}]` : mqtt.host}:${mqtt.port}`,
    base_topic: options.base_topic || 'pop2mqtt',
    client_id: 'pop2mqtt-addon',
  };
  // The service announces MQTT 3.1 / 3.1.1; MQTT 5 is not promised, so speak 3.1.1 (protocol_version 4).
  if (mqtt.protocol === undefined || mqtt.protocol.startsWith('3')) mqttConfig.protocol_version = 4;
  if (mqtt.username) mqttConfig.username = mqtt.username;
  if (mqtt.password) {
    secrets['mqtt-password'] = mqtt.password;
    mqttConfig.password_file = `${secretsDir}/mqtt-password`;
  }
  const ids = new Set<string>();
  const mailboxes = options.mailboxes.map((m) => {
    if (ids.has(m.id)) throw new AddonOptionsError(`options: mailbox id "${m.id}" is used twice`);
    ids.add(m.id);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(m.id)) throw new AddonOptionsError(`options: mailbox id "${m.id}" must match ^[A-Za-z0-9_-]{1,64}$`);
    const file = `mailbox-${m.id}-password`;
    secrets[file] = m.password;
    const out: Record<string, unknown> = { id: m.id, host: m.host };
    if (m.port !== undefined) out.port = m.port;
    if (m.tls !== undefined) out.tls = m.tls;
    if (m.ca_file) out.ca_file = m.ca_file;
    out.username = m.username;
    out.password_file = `${secretsDir}/${file}`;
    for (const k of ['auth', 'schedule', 'keep', 'existing'] as const) if (m[k] !== undefined) out[k] = m[k];
    return out;
  });
  const config = {
    state_dir: `${dataDir}/state`,
    log_level: options.log_level ?? 'info',
    mqtt: mqttConfig,
    homeassistant: { discovery: options.discovery ?? true },
    mailboxes,
    rules: parseRules(options.rules),
  };
  const header = '# Written by the pop2mqtt add-on at each start from the add-on options and the Supervisor MQTT service; edits here are lost.\n';
  return { config: header + stringifyYaml(config), secrets };
}

/** GET <supervisor>/services/mqtt with the add-on's token; a few bounded retries while the Supervisor answers 5xx or not at all. */
export async function fetchMqttService(baseUrl: string, token: string, opts: { attempts?: number; delayMs?: number } = {}): Promise<MqttService> {
  const attempts = opts.attempts ?? 5;
  let last = '';
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, opts.delayMs ?? 2000));
    let res: Response;
    try {
      res = await fetch(`${baseUrl.replace(/\/$/, '')}/services/mqtt`, {
        headers: { Authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      last = `cannot reach the Supervisor at ${baseUrl}: ${(err as Error).message}`;
      continue;
    }
    const body = (await res.json().catch(() => null)) as { result?: string; message?: string; data?: unknown } | null;
    if (res.status >= 500) {
      last = `the Supervisor answered ${res.status}`;
      continue;
    }
    if (res.status === 401 || res.status === 403) throw new AddonOptionsError(`the Supervisor refused the MQTT service request (${res.status}): the add-on needs "services: mqtt:need"`);
    if (!res.ok || body?.result !== 'ok' || !isRecord(body.data)) {
      throw new AddonOptionsError(
        `no MQTT broker from the Supervisor (${res.status}${body?.message ? `: ${body.message}` : ''}): install and start the Mosquitto broker add-on, or another add-on that provides the MQTT service`,
      );
    }
    const d = body.data;
    if (typeof d.host !== 'string' || typeof d.port !== 'number') throw new AddonOptionsError('the Supervisor MQTT service has no host/port');
    return {
      host: d.host,
      port: d.port,
      ssl: d.ssl === true,
      protocol: typeof d.protocol === 'string' ? d.protocol : undefined,
      username: typeof d.username === 'string' ? d.username : undefined,
      password: typeof d.password === 'string' ? d.password : undefined,
    };
  }
  throw new AddonOptionsError(`${last} (after ${attempts} attempts)`);
}
