// The rule language as a zod schema: the one source of truth for rule types, load-time checks with exact paths, and the JSON Schema.
import { z } from 'zod';
import { isDuration, isSize, parseDuration } from '../units.js';
import { validateGlob } from './glob.js';
import { namedGroups, validateRegex } from './regex.js';
import { parseRateLimit } from './rate-limit.js';
import { isKnownVariable, templateVariables, validateTopicTemplate, parseTemplate } from './template.js';

/** Run an object-level check only when the object has no other issue (so an unknown key is not also "empty"). */
const IF_CLEAN = { when: (payload: { issues: unknown[] }) => payload.issues.length === 0 };

const MATCH_KEYS = ['is', 'contains', 'glob', 'regex', 'one_of'] as const;

const GlobString = z.string().superRefine((s, ctx) => {
  const err = validateGlob(s);
  if (err) ctx.addIssue({ code: 'custom', message: err });
});

const RegexString = z.string().superRefine((s, ctx) => {
  const err = validateRegex(s);
  if (err) ctx.addIssue({ code: 'custom', message: err });
});

/** The match types shared by every string condition (several in one object are ANDed). */
const matchShape = {
  is: z.string().optional().describe('the whole value equals this text'),
  contains: z.string().optional().describe('the value contains this text'),
  glob: GlobString.optional().describe('the whole value matches this wildcard pattern: * any run, ? one character, \\ escapes'),
  regex: RegexString.optional().describe(
    'JavaScript regular expression searched in the value; named groups (?<name>...) become template variables and alert fields',
  ),
  one_of: z.array(z.string()).min(1).optional().describe('the whole value equals one of these texts'),
  case_sensitive: z.boolean().optional().describe('compare case-sensitively (default: case-insensitive)'),
};

type MatchLike = { [K in (typeof MATCH_KEYS)[number]]?: unknown };
const hasMatcher = (o: MatchLike) => MATCH_KEYS.some((k) => o[k] !== undefined);
const NEEDS_MATCHER = 'needs at least one of is, contains, glob, regex, one_of';

export const MatchSchema = z
  .strictObject(matchShape)
  .refine((o) => hasMatcher(o), { message: NEEDS_MATCHER, ...IF_CLEAN })
  .describe('a string match: is, contains, glob, regex, one_of (ANDed when several), case_sensitive');
export type MatchConfig = z.infer<typeof MatchSchema>;

const HeaderName = z
  .string()
  .regex(/^[!-9;-~]{1,128}$/, 'a header name is 1-128 printable ASCII characters without ":" or spaces')
  .describe('header field name, case-insensitive');

export const AddressConditionSchema = z
  .strictObject({
    ...matchShape,
    address: MatchSchema.optional().describe('match the bare address local@domain'),
    localpart: MatchSchema.optional().describe('match the part before @'),
    domain: MatchSchema.optional().describe('match the part after @'),
    name: MatchSchema.optional().describe('match the display name'),
  })
  .refine((o) => hasMatcher(o) || !!(o.address || o.localpart || o.domain || o.name), {
    message: `${NEEDS_MATCHER}, address, localpart, domain, name`,
    ...IF_CLEAN,
  })
  .describe('true when some address in the field satisfies every given match; plain match keys see the full "Name <addr>"');
export type AddressConditionConfig = z.infer<typeof AddressConditionSchema>;

export const HeaderConditionSchema = z
  .strictObject({ name: HeaderName, ...matchShape })
  .refine((o) => hasMatcher(o), { message: `${NEEDS_MATCHER} (use exists: to test presence)`, ...IF_CLEAN })
  .describe('true when some instance of the named header matches (decoded, unfolded)');
export type HeaderConditionConfig = z.infer<typeof HeaderConditionSchema>;

const Duration = z
  .union([z.number().nonnegative(), z.string()])
  .superRefine((v, ctx) => {
    if (!isDuration(v)) ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)}: use e.g. 30s, 5m, 1h, 2d or milliseconds` });
  })
  .describe('duration: 250ms, 30s, 5m, 1h, 2d, 1h30m, or a number of milliseconds');

const Size = z
  .union([z.number().nonnegative(), z.string()])
  .superRefine((v, ctx) => {
    if (!isSize(v)) ctx.addIssue({ code: 'custom', message: `invalid size ${JSON.stringify(v)}: use e.g. 512, 10KB, 5MB, 1GiB (1024-based)` });
  })
  .describe('size: bytes as a number, or 512KB, 5MB, 1GiB (K/M/G are 1024-based)');

export const SizeRangeSchema = z
  .strictObject({
    over: Size.optional().describe('strictly larger than'),
    under: Size.optional().describe('strictly smaller than'),
  })
  .refine((o) => !(o.over === undefined && o.under === undefined), { message: 'needs over or under', ...IF_CLEAN });

export const DateConditionSchema = z
  .strictObject({
    newer_than: Duration.optional().describe('the Date header is less than this long ago'),
    older_than: Duration.optional().describe('the Date header is more than this long ago'),
  })
  .refine((o) => !(o.newer_than === undefined && o.older_than === undefined), { message: 'needs newer_than or older_than', ...IF_CLEAN })
  .describe('age of the message by its Date header; false when Date is missing or unparseable');

const HeaderNames = z.union([HeaderName, z.array(HeaderName).min(1)]);

export const PreviewConditionSchema = z
  .strictObject({
    lines: z.int().min(1).max(1000).describe('how many body lines to fetch with TOP n lines'),
    ...matchShape,
  })
  .refine((o) => hasMatcher(o), { message: NEEDS_MATCHER, ...IF_CLEAN })
  .describe('match the first N raw body lines (TOP n N), without downloading the whole message');

const GlobOrMatch = z.union([GlobString, MatchSchema]);

export const AttachmentConditionSchema = z
  .strictObject({
    type: GlobOrMatch.optional().describe('content type, e.g. "image/*" (a glob) or a match object'),
    filename: GlobOrMatch.optional().describe('file name, e.g. "*.jpg" (a glob) or a match object'),
    size: SizeRangeSchema.optional().describe('decoded attachment size'),
  })
  .describe('true when some attachment satisfies every given key (an empty object: has any attachment); needs the full message');

export const SharedSecretConditionSchema = z
  .strictObject({
    secret: z.string().min(12, 'a shared secret must be at least 12 characters').describe('the token; use ${ENV} so it is not in the file'),
    header: HeaderName.optional().describe('header that carries the token (whole value); default: a whitespace-separated token of the Subject'),
  })
  .describe('true when the token is present; compared in constant time; the token is masked in logs and alerts');

/** One condition object: keys at one level are ANDed; nest with all/any/not. */
export interface ConditionConfig {
  from?: AddressConditionConfig;
  to?: AddressConditionConfig;
  cc?: AddressConditionConfig;
  reply_to?: AddressConditionConfig;
  sender?: AddressConditionConfig;
  subject?: MatchConfig;
  header?: HeaderConditionConfig | HeaderConditionConfig[];
  message_id?: MatchConfig;
  date?: z.infer<typeof DateConditionSchema>;
  size?: z.infer<typeof SizeRangeSchema>;
  exists?: string | string[];
  not_exists?: string | string[];
  preview?: z.infer<typeof PreviewConditionSchema>;
  body?: MatchConfig;
  attachment?: z.infer<typeof AttachmentConditionSchema>;
  authenticated?: boolean;
  shared_secret?: z.infer<typeof SharedSecretConditionSchema>;
  all?: ConditionConfig[];
  any?: ConditionConfig[];
  not?: ConditionConfig;
}

export const ConditionSchema: z.ZodType<ConditionConfig> = z
  .strictObject({
    from: AddressConditionSchema.optional().describe('From addresses'),
    to: AddressConditionSchema.optional().describe('To addresses'),
    cc: AddressConditionSchema.optional().describe('Cc addresses'),
    reply_to: AddressConditionSchema.optional().describe('Reply-To addresses'),
    sender: AddressConditionSchema.optional().describe('Sender address'),
    subject: MatchSchema.optional().describe('decoded Subject'),
    header: z.union([HeaderConditionSchema, z.array(HeaderConditionSchema).min(1)]).optional().describe('any header by name; a list is ANDed'),
    message_id: MatchSchema.optional().describe('Message-ID including the angle brackets'),
    date: DateConditionSchema.optional(),
    size: SizeRangeSchema.optional().describe('message size from LIST: costs no download'),
    exists: HeaderNames.optional().describe('these headers are all present'),
    not_exists: HeaderNames.optional().describe('none of these headers is present'),
    preview: PreviewConditionSchema.optional(),
    body: MatchSchema.optional().describe('decoded text body (HTML converted to text when there is no text part); needs RETR'),
    attachment: AttachmentConditionSchema.optional(),
    authenticated: z
      .boolean()
      .optional()
      .describe('the topmost Authentication-Results of a trusted authserv-id says dmarc=pass, or dkim=pass with header.d equal to the From domain'),
    shared_secret: SharedSecretConditionSchema.optional(),
    get all() {
      return z.array(ConditionSchema).min(1).optional().describe('every condition holds');
    },
    get any() {
      return z.array(ConditionSchema).min(1).optional().describe('at least one condition holds');
    },
    get not() {
      return ConditionSchema.optional().describe('the condition does not hold');
    },
  })
  .refine((o) => Object.keys(o).length > 0, {
    message: 'empty condition (omit when: to match every message)',
    when: (payload) => payload.issues.length === 0, // an unknown key is reported as such, not as "empty"
  })
  .describe('condition: keys at one level are ANDed; nest with all/any/not');

const TopicTemplate = z.string().superRefine((s, ctx) => {
  const err = validateTopicTemplate(s);
  if (err) ctx.addIssue({ code: 'custom', message: err });
});

const PayloadTemplate = z.string().superRefine((s, ctx) => {
  try {
    parseTemplate(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const PublishSchema = z
  .strictObject({
    topic: TopicTemplate.optional().describe('topic template relative to mqtt.base_topic, e.g. "alerts/{{camera}}" (default "alerts/{{rule}}")'),
    payload: PayloadTemplate.optional().describe('"default" for the JSON alert, or a template string ({{x|json}} inserts a JSON string)'),
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional().describe('MQTT QoS (default 1)'),
    retain: z.boolean().optional().describe('retain flag (default false)'),
    properties: z.record(z.string(), PayloadTemplate).optional().describe('MQTT 5 user properties; values are templates'),
  })
  .describe('one MQTT publication per matched message');
export type PublishConfig = z.infer<typeof PublishSchema>;

export const AttachmentsPublishSchema = z
  .strictObject({
    topic: TopicTemplate.describe('topic template for the raw bytes; JSON metadata goes to "<topic>/meta"'),
    types: z.array(GlobString).min(1).optional().describe('content-type globs to publish (default ["*/*"])'),
    filename: GlobString.optional().describe('only attachments whose file name matches this glob'),
    max_size: Size.optional().describe('skip larger attachments (default 2MB)'),
    max_count: z.int().min(1).max(100).optional().describe('publish at most this many attachments per message (default 10)'),
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional().describe('MQTT QoS (default 1)'),
    retain: z.boolean().optional().describe('retain flag (default false; true suits Home Assistant image entities)'),
  })
  .describe('publish attachments (e.g. JPEG snapshots) as raw bytes; needs the full message');

const RateLimit = z.string().superRefine((s, ctx) => {
  try {
    parseRateLimit(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** Home Assistant binary_sensor device classes (home-assistant.io/integrations/binary_sensor, "Device class"). */
export const HA_BINARY_SENSOR_CLASSES = [
  'battery', 'battery_charging', 'carbon_monoxide', 'cold', 'connectivity', 'door', 'garage_door', 'gas', 'heat', 'light',
  'lock', 'moisture', 'motion', 'moving', 'occupancy', 'opening', 'plug', 'power', 'presence', 'problem', 'running',
  'safety', 'smoke', 'sound', 'tamper', 'update', 'vibration', 'window',
] as const;

/** A rule's Home Assistant entities beyond its event: a binary_sensor that turns on with each alert and off by itself. */
const RuleHomeAssistantSchema = z.strictObject({
  binary_sensor: z
    .strictObject({
      per: z.string().min(1).max(200).optional().describe('template, e.g. "{{camera}}": one entity per distinct value seen (default: one entity for the rule)'),
      name: z.string().min(1).max(200).optional().describe('entity name template (default: "<per value> <device_class>", or "<rule> <device_class>")'),
      device_class: z.enum(HA_BINARY_SENSOR_CLASSES).default('motion').describe('Home Assistant device class (default motion)'),
      off_delay: Duration.default('30s').describe('Home Assistant turns the entity off this long after the last alert (whole seconds, at least 1s; default 30s)'),
      max_entities: z.int().min(1).max(1000).default(50).describe('at most this many entities for the rule; values seen beyond it get no entity (default 50)'),
    })
    .describe('announce a binary_sensor (per camera with per:) that is ON with each alert and OFF after off_delay'),
});

export const RULE_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const RuleObject = z.strictObject({
  name: z.string().regex(RULE_NAME_RE, 'a rule name is 1-64 of A-Z a-z 0-9 _ . -').describe('unique rule name'),
  description: z.string().optional().describe('free text for humans'),
  when: ConditionSchema.optional().describe('condition; omitted: every message matches'),
  body: z.boolean().optional().describe('the rule needs the full message (RETR) even without body conditions'),
  publish: z.union([PublishSchema, z.array(PublishSchema)]).optional().describe('publication(s); default one JSON alert on "alerts/{{rule}}"; [] publishes nothing'),
  attachments: AttachmentsPublishSchema.optional(),
  stop: z.boolean().optional().describe('when this rule matches, later rules are not evaluated for the message'),
  rate_limit: RateLimit.optional().describe('at most COUNT alerts per window, e.g. 5/min; suppressed alerts are counted in the next one'),
  then: z.enum(['keep', 'delete']).optional().describe('server action after a successful publish (default: the mailbox setting)'),
  action: z
    .boolean()
    .optional()
    .describe('the rule triggers a device: requires an authenticated: true or shared_secret: condition at the top level of when'),
  max_age: Duration.optional().describe('action rules: a command mail whose Date header is older than this is not acted on (default 1h)'),
  max_future: Duration.optional().describe('action rules: nor one dated more than this in the future (default 5m)'),
  replay_window: Duration.optional().describe(
    'action rules: how long the Message-ID of an acted-on command is remembered, so a copy never acts again (default 30d)',
  ),
  event_types: z
    .array(z.string().min(1).max(64))
    .min(1)
    .optional()
    .describe('Home Assistant event types of this rule; a captured `event` that is one of them becomes the event type, anything else is "alert"'),
  homeassistant: RuleHomeAssistantSchema.optional().describe('Home Assistant entities of this rule beyond its event entity'),
});

/** Walk the condition tree and collect every regex with the path at which it sits. */
function collectRegexes(cond: ConditionConfig | undefined): string[] {
  const out: string[] = [];
  const visitMatch = (m: MatchLike | undefined) => {
    if (m && typeof m.regex === 'string') out.push(m.regex);
  };
  const visit = (c: ConditionConfig | undefined) => {
    if (!c) return;
    for (const k of ['from', 'to', 'cc', 'reply_to', 'sender'] as const) {
      const a = c[k];
      if (!a) continue;
      visitMatch(a);
      visitMatch(a.address);
      visitMatch(a.localpart);
      visitMatch(a.domain);
      visitMatch(a.name);
    }
    visitMatch(c.subject);
    for (const h of c.header === undefined ? [] : Array.isArray(c.header) ? c.header : [c.header]) visitMatch(h);
    visitMatch(c.message_id);
    visitMatch(c.preview);
    visitMatch(c.body);
    if (c.attachment) {
      if (typeof c.attachment.type === 'object') visitMatch(c.attachment.type);
      if (typeof c.attachment.filename === 'object') visitMatch(c.attachment.filename);
    }
    c.all?.forEach(visit);
    c.any?.forEach(visit);
    visit(c.not);
  };
  visit(cond);
  return out;
}

/** Capture names a rule's regexes can produce (template variables beyond the builtins). */
export function ruleCaptureNames(rule: Pick<RuleConfig, 'when'>): string[] {
  return [...new Set(collectRegexes(rule.when).flatMap(namedGroups))];
}

/** True when the condition has `authenticated: true` or `shared_secret` on its top level (or in a top-level `all` chain). */
export function hasTopLevelAuthentication(cond: ConditionConfig | undefined): boolean {
  if (!cond) return false;
  if (cond.authenticated === true || cond.shared_secret !== undefined) return true;
  return (cond.all ?? []).some(hasTopLevelAuthentication);
}

/** Defaults of the command-mail guards of an `action: true` rule. */
export const COMMAND_DEFAULTS = { max_age: '1h', max_future: '5m', replay_window: '30d' } as const;

/** True when an address condition names the exact address or domain (`is` or `one_of`): no contains, glob or regex. */
function pinsSender(a: AddressConditionConfig | undefined): boolean {
  const exact = (m: MatchConfig | undefined) => m !== undefined && (m.is !== undefined || m.one_of !== undefined);
  return !!a && (exact(a.address) || exact(a.domain));
}

/** The top-level `from` conditions (also inside a top-level `all` chain): the ones every match must pass. */
function topLevelFroms(cond: ConditionConfig | undefined): AddressConditionConfig[] {
  if (!cond) return [];
  return [...(cond.from ? [cond.from] : []), ...(cond.all ?? []).flatMap(topLevelFroms)];
}

function commandChecks(rule: z.infer<typeof RuleObject>, ctx: z.RefinementCtx): void {
  const guards = (['max_age', 'max_future', 'replay_window'] as const).filter((k) => rule[k] !== undefined);
  if (rule.action !== true) {
    for (const k of guards) ctx.addIssue({ code: 'custom', path: [k], message: `${k} applies to action: true rules only` });
    return;
  }
  if (!hasTopLevelAuthentication(rule.when)) {
    ctx.addIssue({
      code: 'custom',
      path: ['action'],
      message:
        'action: true needs authentication: add authenticated: true or shared_secret: at the top level of when (not inside any/not), so forged mail cannot trigger a device',
    });
  }
  if (!topLevelFroms(rule.when).some(pinsSender)) {
    ctx.addIssue({
      code: 'custom',
      path: rule.when?.from ? ['when', 'from'] : ['action'],
      message:
        'action: true needs the sender pinned at the top level of when: from: { address: { is: ... } } or from: { domain: { one_of: [...] } } (is or one_of; contains, glob and regex also accept look-alikes such as me@example.com.evil.example)',
    });
  }
  const ms = (k: keyof typeof COMMAND_DEFAULTS) => {
    const v = rule[k] ?? COMMAND_DEFAULTS[k];
    return isDuration(v) ? parseDuration(v) : NaN; // an invalid value is reported by the key's own check
  };
  if (ms('replay_window') < ms('max_age') + ms('max_future')) {
    ctx.addIssue({
      code: 'custom',
      path: ['replay_window'],
      message: 'replay_window must be at least max_age + max_future: a copy of a command must not act again while its Date is still accepted',
    });
  }
}

export const RuleSchema = RuleObject.superRefine((rule, ctx) => {
  commandChecks(rule, ctx);
  const captures = ruleCaptureNames(rule);
  const checkVars = (tpl: string | undefined, path: (string | number)[]) => {
    if (tpl === undefined) return;
    let names: string[];
    try {
      names = templateVariables(tpl);
    } catch {
      return; // reported by the field's own check
    }
    for (const n of names) {
      if (!isKnownVariable(n, captures)) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `unknown template variable {{${n}}}: use a named capture of this rule's regexes${captures.length ? ` (${captures.join(', ')})` : ''} or one of mailbox, rule, uid, id, from, from.address, from.name, to, subject, date, size, message_id, body, preview, header.<Name>`,
        });
      }
    }
  };
  const pubs = rule.publish === undefined ? [] : Array.isArray(rule.publish) ? rule.publish : [rule.publish];
  pubs.forEach((p, i) => {
    const base: (string | number)[] = Array.isArray(rule.publish) ? ['publish', i] : ['publish'];
    checkVars(p.topic, [...base, 'topic']);
    if (p.payload !== 'default') checkVars(p.payload, [...base, 'payload']);
    for (const [k, v] of Object.entries(p.properties ?? {})) checkVars(v, [...base, 'properties', k]);
  });
  if (rule.attachments) checkVars(rule.attachments.topic, ['attachments', 'topic']);
  checkVars(rule.homeassistant?.binary_sensor.per, ['homeassistant', 'binary_sensor', 'per']);
  checkVars(rule.homeassistant?.binary_sensor.name, ['homeassistant', 'binary_sensor', 'name']);
}).describe('one rule: when a message matches, publish an alert (and attachments), optionally stop and keep/delete');

export type RuleConfig = z.infer<typeof RuleSchema>;

/** A list of rules with unique names; use this for the top-level `rules:` key. */
export const RulesSchema = z.array(RuleSchema).superRefine((rules, ctx) => {
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const prev = seen.get(r.name);
    if (prev !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name "${r.name}" (also rules[${prev}])` });
    else seen.set(r.name, i);
  });
});
