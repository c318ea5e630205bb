// The zod schema of the config file: the one source of truth for the Config types, the defaults and the JSON Schema.
import * as z from '../zod.js';
import { described } from '../zod.js';
import { checkCronExpression } from './cron-expression.js';
import { RuleSchema } from '../rules/schema.js';
import { parseDuration, parseSize } from '../units.js';

/** Config schema version this build understands. */
export const CONFIG_VERSION = 1;

/** Keys holding a secret value; each may instead be given as `<key>_file`. */
export const SECRET_KEYS = ['password', 'client_secret', 'refresh_token'] as const;

/** A value given as text with a unit or as a plain number, converted by `parse`; parse errors become zod issues. */
function unitValue(parse: (v: string | number) => number, expected: string, help: string) {
  return (description: string) =>
    described(
      z.pipe(
        z.union([z.string(), z.number()], { error: `expected ${expected}` }),
        z.transform((v: string | number, ctx) => {
          try {
            return parse(v);
          } catch (e) {
            ctx.issues.push({ code: 'custom', message: (e as Error).message, input: v });
            return z.NEVER;
          }
        }),
      ),
      `${description} (${help})`,
    );
}

const duration = unitValue(
  parseDuration,
  'a duration like "30s", "5m", "1h", "250ms" or a number of milliseconds',
  'duration: "250ms", "30s", "5m", "1h", "1h30m"; a number is milliseconds',
);
const size = unitValue(parseSize, 'a size like "25MB", "512KiB" or a number of bytes', 'size: "512KB", "25MB", "1GiB", 1024-based; a number is bytes');

const nonEmpty = () => z.string().check(z.minLength(1, 'must not be empty'));

/** Adds an issue when both `key` and `key_file` are set. */
function notBoth(obj: Record<string, unknown>, key: string, ctx: z.RefinementCtx<unknown>): void {
  if (obj[key] !== undefined && obj[`${key}_file`] !== undefined) {
    ctx.addIssue({ code: 'custom', path: [`${key}_file`], message: `set either ${key} or ${key}_file, not both` });
  }
}

const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:'];

/** A broker URL; the message never echoes the URL because it may carry credentials. */
const MqttUrl = z.string().check(z.superRefine((s: string, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'invalid URL: expected e.g. mqtt://127.0.0.1:1883 (schemes: mqtt, mqtts, ws, wss)' });
    return;
  }
  if (!MQTT_PROTOCOLS.includes(u.protocol)) {
    ctx.addIssue({ code: 'custom', message: `unsupported URL scheme "${u.protocol.replace(/:$/, '')}": use mqtt, mqtts, ws or wss` });
  } else if (!u.hostname) {
    ctx.addIssue({ code: 'custom', message: 'URL has no host' });
  }
}));

/** An MQTT topic fragment that we prefix to others: no wildcards, no NUL, no leading or trailing slash. */
function topicPrefix(description: string) {
  return described(
    z.string().check(
      z.minLength(1, 'must not be empty'),
      z.refine((s: string) => !/[+#\0]/.test(s), 'must not contain the MQTT wildcards + or #, nor NUL'),
      z.refine((s: string) => !s.startsWith('/') && !s.endsWith('/'), 'must not start or end with /'),
    ),
    description,
  );
}

const FilePath = (description: string) => described(nonEmpty(), description);

const reconnectSchema = described(
  z.prefault(
    z.strictObject({
      min: z.prefault(duration('First reconnect delay'), '1s'),
      max: z.prefault(duration('Longest reconnect delay (exponential backoff up to this)'), '60s'),
    }),
    {},
  ),
  'Reconnect backoff',
);

export const MqttSchema = described(
  z
    .strictObject({
      url: described(MqttUrl, 'Broker URL: mqtt://, mqtts://, ws:// or wss://, e.g. mqtt://127.0.0.1:1883'),
      base_topic: z._default(topicPrefix('Prefix of every topic the agent publishes (`<base>/bridge/...` is the agent itself)'), 'pop2mqtt'),
      client_id: described(z.optional(nonEmpty()), 'MQTT client id; default pop2mqtt-<hostname>'),
      username: described(z.optional(z.string()), 'Broker user name'),
      password: described(z.optional(z.string()), 'Broker password (use ${ENV}, password_file or !secret rather than a literal)'),
      password_file: z.optional(FilePath('File holding the broker password (trailing newline trimmed), relative to the config file')),
      ca_file: z.optional(FilePath('Extra CA certificate (PEM) to trust for mqtts/wss')),
      cert_file: z.optional(FilePath('Client certificate (PEM) for TLS client authentication')),
      key_file: z.optional(FilePath('Private key (PEM) of cert_file')),
      protocol_version: described(z._default(z.union([z.literal(4), z.literal(5)]), 5), 'MQTT protocol: 5 (default) or 4 (3.1.1)'),
      keepalive: z.prefault(duration('Keepalive interval'), '60s'),
      reconnect: reconnectSchema,
      qos: described(z._default(z.union([z.literal(0), z.literal(1), z.literal(2)]), 1), 'QoS of alerts (1 = at least once)'),
      min_request_interval: z.prefault(
        duration('At most one requested poll (bridge/request/poll, Home Assistant buttons) per mailbox in this time; more requests get the last result; 0 turns it off'),
        '10s',
      ),
    })
    .check(
      z.superRefine((m, ctx) => {
        notBoth(m, 'password', ctx);
        if (m.reconnect.min > m.reconnect.max) ctx.addIssue({ code: 'custom', path: ['reconnect', 'min'], message: 'must not be greater than reconnect.max' });
      }),
    ),
  'MQTT broker connection',
);

export const OutboxSchema = described(
  z.strictObject({
    max_messages: described(z._default(z.number().check(z.int(), z.gte(1)), 10000), 'Most alerts kept on disk while the broker is unreachable'),
    max_bytes: z.prefault(size('Most bytes kept on disk while the broker is unreachable'), '50MB'),
    when_full: described(
      z._default(z.enum(['stop_polling', 'drop_oldest']), 'stop_polling'),
      'stop_polling: stop fetching mail (nothing is lost, mail stays on the server); drop_oldest: discard the oldest queued alerts',
    ),
  }),
  'Disk-backed queue of alerts not yet acknowledged by the broker',
);

export const HomeAssistantSchema = described(
  z.strictObject({
    discovery: described(z._default(z.boolean(), false), 'Publish Home Assistant MQTT discovery configs'),
    prefix: z._default(topicPrefix('Discovery prefix'), 'homeassistant'),
    status_topic: z._default(topicPrefix('Topic where Home Assistant announces itself (its birth message); Home Assistant\'s own default, whatever the discovery prefix'), 'homeassistant/status'),
    birth_payload: described(
      z._default(z.string().check(z.minLength(1, 'must not be empty')), 'online'),
      'Payload of Home Assistant\'s birth message on status_topic; discovery is announced again when it arrives',
    ),
  }),
  'Home Assistant integration',
);

export const OAuthSchema = described(
  z
    .strictObject({
      token_url: described(z.optional(z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' })), 'OAuth2 token endpoint; filled in by provider'),
      client_id: described(z.optional(nonEmpty()), 'OAuth2 client id'),
      client_secret: described(z.optional(z.string()), 'OAuth2 client secret'),
      client_secret_file: z.optional(FilePath('File holding the client secret')),
      refresh_token: described(z.optional(z.string()), 'OAuth2 refresh token'),
      refresh_token_file: z.optional(FilePath('File holding the refresh token')),
      scope: described(z.optional(z.string()), 'OAuth2 scope; filled in by provider'),
    })
    .check(
      z.superRefine((o, ctx) => {
        notBoth(o, 'client_secret', ctx);
        notBoth(o, 'refresh_token', ctx);
      }),
    ),
  'OAuth2 (XOAUTH2 / OAUTHBEARER) credentials',
);
export const AUTH_MECHANISMS = ['auto', 'user', 'apop', 'plain', 'login', 'cram-md5', 'scram-sha-1', 'scram-sha-256', 'xoauth2', 'oauthbearer'] as const;
/** Mechanisms that send the password itself over the wire. */
export const CLEARTEXT_MECHANISMS = ['user', 'plain', 'login'] as const;
const OAUTH_MECHANISMS = ['xoauth2', 'oauthbearer'];

export const PROVIDERS = {
  gmail: {
    host: 'pop.gmail.com',
    port: 995,
    token_url: 'https://oauth2.googleapis.com/token',
    scope: 'https://mail.google.com/',
  },
  microsoft: {
    host: 'outlook.office365.com',
    port: 995,
    token_url: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    scope: 'https://outlook.office.com/POP.AccessAsUser.All offline_access',
  },
} as const;

export const MAILBOX_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const MailboxSchema = described(
  z.pipe(
    z
      .strictObject({
        id: described(z.string().check(z.regex(MAILBOX_ID, 'must match ^[A-Za-z0-9_-]{1,64}$')), 'Stable id: used in topics and state file names'),
        name: described(z.optional(z.string()), 'Display name'),
        host: described(z.optional(nonEmpty()), 'POP3 server (required unless provider is set)'),
        port: described(z.optional(z.number().check(z.int(), z.gte(1), z.lte(65535))), 'Port; default 995 for tls: implicit, 110 otherwise'),
        tls: described(z._default(z.enum(['implicit', 'starttls', 'none']), 'implicit'), 'implicit (POP3S), starttls (STLS on the plain port) or none'),
        ca_file: z.optional(FilePath('Extra CA certificate (PEM) to trust, e.g. for a self-signed server')),
        servername: described(z.optional(nonEmpty()), 'TLS server name (SNI and certificate check) if it differs from host'),
        fingerprint: described(
          z.optional(
            z.pipe(
              z.string().check(z.regex(/^(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$/, 'expected a SHA-256 fingerprint: 64 hex digits, with or without colons')),
              z.transform((s: string) => s.replace(/:/g, '').toLowerCase()),
            ),
          ),
          'Pin the server certificate by SHA-256 fingerprint (normalised to lowercase hex without colons)',
        ),
        min_tls_version: described(z.optional(z.enum(['TLSv1.2', 'TLSv1.3'])), 'Lowest TLS version accepted (Node default TLSv1.2)'),
        username: described(nonEmpty(), 'Login name'),
        password: described(z.optional(z.string()), 'Password (use ${ENV}, password_file or !secret rather than a literal)'),
        password_file: z.optional(FilePath('File holding the password (trailing newline trimmed), relative to the config file')),
        auth: described(z._default(z.enum(AUTH_MECHANISMS), 'auto'), 'Authentication mechanism; auto picks PLAIN inside TLS, else the strongest offered'),
        allow_insecure_auth: described(z._default(z.boolean(), false), 'Allow a cleartext password over an unencrypted connection'),
        oauth: z.optional(OAuthSchema),
        provider: described(
          z.optional(z.enum(['gmail', 'microsoft'])),
          'Preset: fills host and port; with oauth also token URL and scope, and uses XOAUTH2; gmail also takes an app password',
        ),
        schedule: described(
          z._default(
            z.string().check(
              z.superRefine((s: string, ctx) => {
                const result = checkCronExpression(s);
                if (result.valid) return;
                const why = result.errors.map((e) => e.message).join('; ');
                ctx.addIssue({ code: 'custom', message: `invalid cron expression${why ? ` (${why})` : ''}: expected 5 fields (minute hour day month weekday) or 6 with seconds first` });
              }),
            ),
            '*/5 * * * *',
          ),
          'When to poll: cron expression, optional seconds field first',
        ),
        keep: described(z._default(z.boolean(), true), 'Leave mail on the server (true) or delete it once its alert is acknowledged'),
        existing: described(
          z._default(z.enum(['skip', 'process']), 'skip'),
          'First run: skip marks mail already present as seen without alerts; process handles it',
        ),
        max_message_size: z.optional(size('Largest message downloaded in full; default from top level')),
        timeouts: described(
          z.prefault(
            z.strictObject({
              connect: z.prefault(duration('TCP and TLS connect'), '15s'),
              greeting: z.prefault(duration('Wait for the server greeting'), '15s'),
              command: z.prefault(duration('Wait for each reply (idle time)'), '30s'),
              session: z.prefault(duration('Whole poll session'), '10m'),
              min_reply_rate: z.prefault(
                size('Slowest a reply may arrive, in bytes per second over any reply_rate_window of transfer; slower ends the session (ESLOW). 0 turns the rule off'),
                256,
              ),
              reply_rate_window: z.prefault(duration('Window over which min_reply_rate is measured; 0 turns the rule off'), '30s'),
            }),
            {},
          ),
          'POP3 timeouts',
        ),
        pipelining: described(z._default(z.boolean(), true), 'Pipeline commands when the server offers PIPELINING'),
        fast_uidl: described(z._default(z.boolean(), true), 'Find new mail with a binary search over UIDL n (assumes new mail is appended)'),
        rules: described(z.optional(z.array(nonEmpty())), 'Names of rules applied to this mailbox; default all'),
        auth_backoff: described(
          z.prefault(
            z.strictObject({
              max_attempts_per_hour: described(z._default(z.number().check(z.int(), z.gte(1)), 3), 'Failed logins allowed per hour before polling pauses'),
            }),
            {},
          ),
          'Protects the account from lockout after authentication failures',
        ),
        backoff: described(
          z.prefault(
            z.strictObject({
              min: z.prefault(duration('First retry delay after a failed poll'), '30s'),
              max: z.prefault(duration('Longest retry delay'), '30m'),
            }),
            {},
          ),
          'Retry backoff after connection or server errors',
        ),
      })
      .check(
        z.superRefine((m, ctx) => {
          if (!m.host && !m.provider) ctx.addIssue({ code: 'custom', path: ['host'], message: 'required (or set provider)' });
          notBoth(m, 'password', ctx);
          // A provider preset logs in with XOAUTH2 when oauth is set, and with the password (an app password) otherwise.
          const auth = m.provider && m.auth === 'auto' && m.oauth ? 'xoauth2' : m.auth;
          const hasPassword = m.password !== undefined || m.password_file !== undefined;
          if (m.provider === 'microsoft' && !OAUTH_MECHANISMS.includes(auth)) {
            ctx.addIssue({
              code: 'custom',
              path: [hasPassword ? (m.password !== undefined ? 'password' : 'password_file') : 'oauth'],
              message: hasPassword
                ? 'Microsoft 365 and Outlook.com refuse passwords, app passwords included, over POP3 (Basic authentication is off: Exchange Online since 2022, Outlook.com since September 2024); remove the password and set oauth: { client_id, refresh_token } (docs/oauth.md)'
                : 'required for provider microsoft: oauth: { client_id, refresh_token } (docs/oauth.md)',
            });
            return;
          }
          if (m.provider === 'gmail' && !OAUTH_MECHANISMS.includes(auth) && !hasPassword) {
            ctx.addIssue({
              code: 'custom',
              path: ['password'],
              message: 'required for provider gmail: an app password (Google Account > Security > 2-Step Verification > App passwords; README "Gmail with an app password"), or oauth: { client_id, refresh_token } for XOAUTH2 (docs/oauth.md)',
            });
            return;
          }
          if (OAUTH_MECHANISMS.includes(auth)) {
            if (!m.oauth) ctx.addIssue({ code: 'custom', path: ['oauth'], message: `required for auth ${auth}` });
            else {
              if (!m.oauth.client_id) ctx.addIssue({ code: 'custom', path: ['oauth', 'client_id'], message: `required for auth ${auth}` });
              if (m.oauth.refresh_token === undefined && m.oauth.refresh_token_file === undefined) ctx.addIssue({ code: 'custom', path: ['oauth', 'refresh_token'], message: `required (or refresh_token_file) for auth ${auth}` });
              if (!m.oauth.token_url && !m.provider) ctx.addIssue({ code: 'custom', path: ['oauth', 'token_url'], message: `required for auth ${auth} (or set provider)` });
            }
          } else if (m.password === undefined && m.password_file === undefined) {
            ctx.addIssue({ code: 'custom', path: ['password'], message: 'required (or password_file)' });
          }
          if (m.tls === 'none' && !m.allow_insecure_auth && (CLEARTEXT_MECHANISMS as readonly string[]).includes(m.auth)) {
            ctx.addIssue({
              code: 'custom',
              path: ['auth'],
              message: `auth ${m.auth} sends the password in cleartext and tls is none: use tls: starttls/implicit, a challenge mechanism, or set allow_insecure_auth: true`,
            });
          }
          if (m.backoff.min > m.backoff.max) ctx.addIssue({ code: 'custom', path: ['backoff', 'min'], message: 'must not be greater than backoff.max' });
        }),
      ),
    z.transform((m) => {
      const preset = m.provider ? PROVIDERS[m.provider] : undefined;
      const oauth = m.oauth ? { ...m.oauth } : undefined;
      if (oauth && preset) {
        oauth.token_url ??= preset.token_url;
        oauth.scope ??= preset.scope;
      }
      return {
        ...m,
        host: (m.host ?? preset?.host)!,
        port: m.port ?? preset?.port ?? (m.tls === 'implicit' ? 995 : 110),
        auth: preset && m.auth === 'auto' && m.oauth ? ('xoauth2' as const) : m.auth,
        oauth,
      };
    }),
  ),
  'One POP3 mailbox',
);

export const ConfigSchema = described(
  z.pipe(
    z
      .strictObject({
        version: described(
          z._default(z.number().check(z.int(), z.gte(1), z.lte(CONFIG_VERSION, `this build understands config version ${CONFIG_VERSION} at most`)), CONFIG_VERSION),
          'Config schema version',
        ),
        state_dir: described(z._default(nonEmpty(), './data'), 'Where UID state and the outbox are kept; relative to the config file'),
        log_level: described(z._default(z.enum(['debug', 'info', 'warn', 'error']), 'info'), 'Log level'),
        log_format: described(
          z._default(z.enum(['text', 'json']), 'text'),
          'Log format: text lines, or one JSON object per line (time, level, scope, msg and the fields) for log shippers',
        ),
        trusted_authserv_ids: described(
          z._default(z.array(nonEmpty()), []),
          'Authentication-Results authserv-ids (your own mail server) trusted by `authenticated:` rule conditions',
        ),
        max_message_size: z.prefault(size('Largest message downloaded in full (RETR); bigger ones are handled from headers only'), '25MB'),
        regex_input_limit: z.prefault(
          z.pipe(
            size('Most characters one regex condition reads per evaluation (the start of the values it examines); bounds the cost of a slow pattern on hostile mail'),
            z.number().check(
              z.gte(64, 'regex_input_limit must be at least 64 bytes'),
              z.lte(1024 * 1024, 'regex_input_limit must be at most 1MiB: a slow regex on more text can stall the agent for seconds'),
            ),
          ),
          '4KiB',
        ),
        max_concurrent_polls: described(
          z._default(z.number().check(z.int(), z.gte(1), z.lte(1000)), 4),
          'Most POP3 sessions open at once across all mailboxes (scheduled, requested and `once` polls); the others wait their turn',
        ),
        poll_spread: z.prefault(
          duration('With several mailboxes, each scheduled poll starts a fixed delay after its tick, set by the mailbox\'s place in the list and shorter than the schedule\'s interval and than this, so that logins are spread out rather than all at the tick; 0 polls at the tick'),
          '1m',
        ),
        mqtt: MqttSchema,
        outbox: z.prefault(OutboxSchema, {}),
        homeassistant: z.prefault(HomeAssistantSchema, {}),
        mailboxes: described(z.array(MailboxSchema).check(z.minLength(1, 'at least one mailbox is required')), 'POP3 mailboxes to poll'),
        rules: described(z._default(z.array(RuleSchema), []), 'Rules turning mail into MQTT alerts, evaluated in order'),
      })
      .check(
        z.superRefine((c, ctx) => {
          const seenIds = new Map<string, number>();
          c.mailboxes.forEach((m, i) => {
            const first = seenIds.get(m.id);
            if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['mailboxes', i, 'id'], message: `duplicate mailbox id "${m.id}" (also mailboxes[${first}])` });
            else seenIds.set(m.id, i);
          });
          const ruleNames = new Map<string, number>();
          c.rules.forEach((r, i) => {
            const first = ruleNames.get(r.name);
            if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicate rule name "${r.name}" (also rules[${first}])` });
            else ruleNames.set(r.name, i);
          });
          c.mailboxes.forEach((m, i) => {
            m.rules?.forEach((name, j) => {
              if (!ruleNames.has(name)) {
                ctx.addIssue({ code: 'custom', path: ['mailboxes', i, 'rules', j], message: `unknown rule "${name}"${ruleNames.size ? ` (rules: ${[...ruleNames.keys()].join(', ')})` : ' (no rules defined)'}` });
              }
            });
          });
        }),
      ),
    z.transform((c) => ({
      ...c,
      mailboxes: c.mailboxes.map((m) => ({ ...m, max_message_size: m.max_message_size ?? c.max_message_size })),
    })),
  ),
  'pop2mqtt configuration',
);
export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type MailboxConfig = Config['mailboxes'][number];
export type MqttConfig = Config['mqtt'];
export type OutboxConfig = Config['outbox'];
export type HomeAssistantConfig = Config['homeassistant'];
