// The rule language as a zod schema: the one source of truth for rule types, load-time checks with exact paths, and the JSON Schema.
import * as z from '../zod.js';
import { described, withChecks } from '../zod.js';
import { isDuration, isSize, parseDuration } from '../units.js';
import { validateGlob } from './glob.js';
import { namedGroups, validateRegex } from './regex.js';
import { parseRateLimit } from './rate-limit.js';
import { isKnownVariable, templateVariables, validateTopicTemplate, parseTemplate } from './template.js';

/** Run an object-level check only when the object has no other issue (so an unknown key is not also "empty"). */
const IF_CLEAN = { when: (payload: { issues: unknown[] }) => payload.issues.length === 0 };

const MATCH_KEYS = ['is', 'contains', 'glob', 'regex', 'one_of'] as const;

/** A string that `validate` accepts (it returns the error text of a refused one). */
const validatedString = (validate: (s: string) => string | undefined | null) => z.string().check(
  z.superRefine((s: string, ctx) => {
    const err = validate(s);
    if (err) ctx.addIssue({ code: 'custom', message: err });
  }),
);

const GlobString = validatedString(validateGlob);

const RegexString = validatedString(validateRegex);

/** The match types shared by every string condition (several in one object are ANDed). */
const matchShape = {
  is: described(z.optional(z.string()), 'the whole value equals this text'),
  contains: described(z.optional(z.string()), 'the value contains this text'),
  glob: described(z.optional(GlobString), 'the whole value matches this wildcard pattern: * any run, ? one character, \\ escapes'),
  regex: described(
    z.optional(RegexString),
    'JavaScript regular expression searched in the value; named groups (?<name>...) become template variables and alert fields',
  ),
  one_of: described(z.optional(z.array(z.string()).check(z.minLength(1))), 'the whole value equals one of these texts'),
  case_sensitive: described(z.optional(z.boolean()), 'compare case-sensitively (default: case-insensitive)'),
};

type MatchLike = { [K in (typeof MATCH_KEYS)[number]]?: unknown };
const hasMatcher = (o: MatchLike) => MATCH_KEYS.some((k) => o[k] !== undefined);
const NEEDS_MATCHER = 'needs at least one of is, contains, glob, regex, one_of';

export const MatchSchema = described(
  z.strictObject(matchShape).check(z.refine((o) => hasMatcher(o), { message: NEEDS_MATCHER, ...IF_CLEAN })),
  'a string match: is, contains, glob, regex, one_of (ANDed when several), case_sensitive',
);
export type MatchConfig = z.infer<typeof MatchSchema>;

const HeaderName = described(
  z.string().check(z.regex(/^[!-9;-~]{1,128}$/, 'a header name is 1-128 printable ASCII characters without ":" or spaces')),
  'header field name, case-insensitive',
);

export const AddressConditionSchema = described(
  z
    .strictObject({
      ...matchShape,
      address: described(z.optional(MatchSchema), 'match the bare address local@domain'),
      localpart: described(z.optional(MatchSchema), 'match the part before @'),
      domain: described(z.optional(MatchSchema), 'match the part after @'),
      name: described(z.optional(MatchSchema), 'match the display name'),
    })
    .check(
      z.refine((o) => hasMatcher(o) || !!(o.address || o.localpart || o.domain || o.name), {
        message: `${NEEDS_MATCHER}, address, localpart, domain, name`,
        ...IF_CLEAN,
      }),
    ),
  'true when some address in the field satisfies every given match; plain match keys see the full "Name <addr>"',
);
export type AddressConditionConfig = z.infer<typeof AddressConditionSchema>;

export const HeaderConditionSchema = described(
  z
    .strictObject({ name: HeaderName, ...matchShape })
    .check(z.refine((o) => hasMatcher(o), { message: `${NEEDS_MATCHER} (use exists: to test presence)`, ...IF_CLEAN })),
  'true when some instance of the named header matches (decoded, unfolded)',
);
export type HeaderConditionConfig = z.infer<typeof HeaderConditionSchema>;

const Duration = described(
  z.union([z.number().check(z.gte(0)), z.string()]).check(
    z.superRefine((v: number | string, ctx) => {
      if (!isDuration(v)) ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)}: use e.g. 30s, 5m, 1h, 2d or milliseconds` });
    }),
  ),
  'duration: 250ms, 30s, 5m, 1h, 2d, 1h30m, or a number of milliseconds',
);

const Size = described(
  z.union([z.number().check(z.gte(0)), z.string()]).check(
    z.superRefine((v: number | string, ctx) => {
      if (!isSize(v)) ctx.addIssue({ code: 'custom', message: `invalid size ${JSON.stringify(v)}: use e.g. 512, 10KB, 5MB, 1GiB (1024-based)` });
    }),
  ),
  'size: bytes as a number, or 512KB, 5MB, 1GiB (K/M/G are 1024-based)',
);

export const SizeRangeSchema = z
  .strictObject({
    over: described(z.optional(Size), 'strictly larger than'),
    under: described(z.optional(Size), 'strictly smaller than'),
  })
  .check(z.refine((o) => !(o.over === undefined && o.under === undefined), { message: 'needs over or under', ...IF_CLEAN }));

export const DateConditionSchema = described(
  z
    .strictObject({
      newer_than: described(z.optional(Duration), 'the Date header is less than this long ago'),
      older_than: described(z.optional(Duration), 'the Date header is more than this long ago'),
    })
    .check(z.refine((o) => !(o.newer_than === undefined && o.older_than === undefined), { message: 'needs newer_than or older_than', ...IF_CLEAN })),
  'age of the message by its Date header; false when Date is missing or unparseable',
);

const HeaderNames = z.union([HeaderName, z.array(HeaderName).check(z.minLength(1))]);

export const PreviewConditionSchema = described(
  z
    .strictObject({
      lines: described(z.int().check(z.gte(1), z.lte(1000)), 'how many body lines to fetch with TOP n lines'),
      ...matchShape,
    })
    .check(z.refine((o) => hasMatcher(o), { message: NEEDS_MATCHER, ...IF_CLEAN })),
  'match the first N raw body lines (TOP n N), without downloading the whole message',
);

const GlobOrMatch = z.union([GlobString, MatchSchema]);

export const AttachmentConditionSchema = described(
  z.strictObject({
    type: described(z.optional(GlobOrMatch), 'content type, e.g. "image/*" (a glob) or a match object'),
    filename: described(z.optional(GlobOrMatch), 'file name, e.g. "*.jpg" (a glob) or a match object'),
    size: described(z.optional(SizeRangeSchema), 'decoded attachment size'),
  }),
  'true when some attachment satisfies every given key (an empty object: has any attachment); needs the full message',
);

export const SharedSecretConditionSchema = described(
  z.strictObject({
    secret: described(z.string().check(z.minLength(12, 'a shared secret must be at least 12 characters')), 'the token; use ${ENV} so it is not in the file'),
    header: described(z.optional(HeaderName), 'header that carries the token (whole value); default: a whitespace-separated token of the Subject'),
  }),
  'true when the token is present; compared in constant time; the token is masked in logs and alerts',
);

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

export const ConditionSchema: z.ZodMiniType<ConditionConfig> = described(
  withChecks(
    z.strictObject({
      from: described(z.optional(AddressConditionSchema), 'From addresses'),
      to: described(z.optional(AddressConditionSchema), 'To addresses'),
      cc: described(z.optional(AddressConditionSchema), 'Cc addresses'),
      reply_to: described(z.optional(AddressConditionSchema), 'Reply-To addresses'),
      sender: described(z.optional(AddressConditionSchema), 'Sender address'),
      subject: described(z.optional(MatchSchema), 'decoded Subject'),
      header: described(
        z.optional(z.union([HeaderConditionSchema, z.array(HeaderConditionSchema).check(z.minLength(1))])),
        'any header by name; a list is ANDed',
      ),
      message_id: described(z.optional(MatchSchema), 'Message-ID including the angle brackets'),
      date: z.optional(DateConditionSchema),
      size: described(z.optional(SizeRangeSchema), 'message size from LIST: costs no download'),
      exists: described(z.optional(HeaderNames), 'these headers are all present'),
      not_exists: described(z.optional(HeaderNames), 'none of these headers is present'),
      preview: z.optional(PreviewConditionSchema),
      body: described(z.optional(MatchSchema), 'decoded text body (HTML converted to text when there is no text part); needs RETR'),
      attachment: z.optional(AttachmentConditionSchema),
      authenticated: described(
        z.optional(z.boolean()),
        'the topmost Authentication-Results of a trusted authserv-id says dmarc=pass, or dkim=pass with header.d equal to the From domain',
      ),
      shared_secret: z.optional(SharedSecretConditionSchema),
      get all() {
        return described(z.optional(z.array(ConditionSchema).check(z.minLength(1))), 'every condition holds');
      },
      get any() {
        return described(z.optional(z.array(ConditionSchema).check(z.minLength(1))), 'at least one condition holds');
      },
      get not() {
        return described(z.optional(ConditionSchema), 'the condition does not hold');
      },
    }),
    z.refine((o) => Object.keys(o as object).length > 0, {
      message: 'empty condition (omit when: to match every message)',
      when: (payload) => payload.issues.length === 0, // an unknown key is reported as such, not as "empty"
    }),
  ),
  'condition: keys at one level are ANDed; nest with all/any/not',
);

const TopicTemplate = validatedString(validateTopicTemplate);

const PayloadTemplate = z.string().check(
  z.superRefine((s: string, ctx) => {
    try {
      parseTemplate(s);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
);

export const PublishSchema = described(
  z.strictObject({
    topic: described(z.optional(TopicTemplate), 'topic template relative to mqtt.base_topic, e.g. "alerts/{{camera}}" (default "alerts/{{rule}}")'),
    payload: described(z.optional(PayloadTemplate), '"default" for the JSON alert, or a template string ({{x|json}} inserts a JSON string)'),
    qos: described(z.optional(z.union([z.literal(0), z.literal(1), z.literal(2)])), 'MQTT QoS (default 1)'),
    retain: described(z.optional(z.boolean()), 'retain flag (default false)'),
    properties: described(z.optional(z.record(z.string(), PayloadTemplate)), 'MQTT 5 user properties; values are templates'),
  }),
  'one MQTT publication per matched message',
);
export type PublishConfig = z.infer<typeof PublishSchema>;

export const AttachmentsPublishSchema = described(
  z.strictObject({
    topic: described(TopicTemplate, 'topic template for the raw bytes; JSON metadata goes to "<topic>/meta"'),
    types: described(z.optional(z.array(GlobString).check(z.minLength(1))), 'content-type globs to publish (default ["*/*"])'),
    filename: described(z.optional(GlobString), 'only attachments whose file name matches this glob'),
    max_size: described(z.optional(Size), 'skip larger attachments (default 2MB)'),
    max_count: described(z.optional(z.int().check(z.gte(1), z.lte(100))), 'publish at most this many attachments per message (default 10)'),
    qos: described(z.optional(z.union([z.literal(0), z.literal(1), z.literal(2)])), 'MQTT QoS (default 1)'),
    retain: described(z.optional(z.boolean()), 'retain flag (default false; true suits Home Assistant image entities)'),
  }),
  'publish attachments (e.g. JPEG snapshots) as raw bytes; needs the full message',
);

const RateLimit = z.string().check(
  z.superRefine((s: string, ctx) => {
    try {
      parseRateLimit(s);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
);

/** Home Assistant binary_sensor device classes (home-assistant.io/integrations/binary_sensor, "Device class"). */
export const HA_BINARY_SENSOR_CLASSES = [
  'battery', 'battery_charging', 'carbon_monoxide', 'cold', 'connectivity', 'door', 'garage_door', 'gas', 'heat', 'light',
  'lock', 'moisture', 'motion', 'moving', 'occupancy', 'opening', 'plug', 'power', 'presence', 'problem', 'running',
  'safety', 'smoke', 'sound', 'tamper', 'update', 'vibration', 'window',
] as const;

/** A rule's Home Assistant entities beyond its event: a binary_sensor that turns on with each alert and off by itself. */
const RuleHomeAssistantSchema = z.strictObject({
  binary_sensor: described(
    z.strictObject({
      per: described(
        z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
        'template, e.g. "{{camera}}": one entity per distinct value seen (default: one entity for the rule)',
      ),
      name: described(
        z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
        'entity name template (default: "<per value> <device_class>", or "<rule> <device_class>")',
      ),
      device_class: described(z._default(z.enum(HA_BINARY_SENSOR_CLASSES), 'motion'), 'Home Assistant device class (default motion)'),
      off_delay: described(
        z._default(Duration, '30s'),
        'Home Assistant turns the entity off this long after the last alert (whole seconds, at least 1s; default 30s)',
      ),
      max_entities: described(
        z._default(z.int().check(z.gte(1), z.lte(1000)), 50),
        'at most this many entities for the rule; values seen beyond it get no entity (default 50)',
      ),
    }),
    'announce a binary_sensor (per camera with per:) that is ON with each alert and OFF after off_delay',
  ),
});

export const RULE_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const RuleObject = z.strictObject({
  name: described(z.string().check(z.regex(RULE_NAME_RE, 'a rule name is 1-64 of A-Z a-z 0-9 _ . -')), 'unique rule name'),
  description: described(z.optional(z.string()), 'free text for humans'),
  when: described(z.optional(ConditionSchema), 'condition; omitted: every message matches'),
  body: described(z.optional(z.boolean()), 'the rule needs the full message (RETR) even without body conditions'),
  publish: described(
    z.optional(z.union([PublishSchema, z.array(PublishSchema)])),
    'publication(s); default one JSON alert on "alerts/{{rule}}"; [] publishes nothing',
  ),
  attachments: z.optional(AttachmentsPublishSchema),
  stop: described(z.optional(z.boolean()), 'when this rule matches, later rules are not evaluated for the message'),
  rate_limit: described(z.optional(RateLimit), 'at most COUNT alerts per window, e.g. 5/min; suppressed alerts are counted in the next one'),
  then: described(z.optional(z.enum(['keep', 'delete'])), 'server action after a successful publish (default: the mailbox setting)'),
  action: described(
    z.optional(z.boolean()),
    'the rule triggers a device: requires an authenticated: true or shared_secret: condition at the top level of when',
  ),
  max_age: described(z.optional(Duration), 'action rules: a command mail whose Date header is older than this is not acted on (default 1h)'),
  max_future: described(z.optional(Duration), 'action rules: nor one dated more than this in the future (default 5m)'),
  replay_window: described(
    z.optional(Duration),
    'action rules: how long the Message-ID of an acted-on command is remembered, so a copy never acts again (default 30d)',
  ),
  event_types: described(
    z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(64))).check(z.minLength(1))),
    'Home Assistant event types of this rule; a captured `event` that is one of them becomes the event type, anything else is "alert"',
  ),
  homeassistant: described(z.optional(RuleHomeAssistantSchema), 'Home Assistant entities of this rule beyond its event entity'),
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

function commandChecks(rule: z.infer<typeof RuleObject>, ctx: z.RefinementCtx<unknown>): void {
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

export const RuleSchema = described(
  RuleObject.check(
    z.superRefine((rule, ctx) => {
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
              path: [...path], // its own copy: zod prefixes an issue's path in place, and two issues sharing one array got it twice
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
    }),
  ),
  'one rule: when a message matches, publish an alert (and attachments), optionally stop and keep/delete',
);

export type RuleConfig = z.infer<typeof RuleSchema>;

/** A list of rules with unique names; use this for the top-level `rules:` key. */
export const RulesSchema = z.array(RuleSchema).check(
  z.superRefine((rules, ctx) => {
    const seen = new Map<string, number>();
    rules.forEach((r, i) => {
      const prev = seen.get(r.name);
      if (prev !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name "${r.name}" (also rules[${prev}])` });
      else seen.set(r.name, i);
    });
  }),
);
