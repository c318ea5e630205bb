// Every topic the agent publishes or listens to under the base topic, built in one place so discovery points where the agent writes.
import { createHash } from 'node:crypto';

/** `<base>/bridge/state`: retained `{"state":"online"|"offline"}`, also the last will. */
export const bridgeStateTopic = (base: string): string => `${base}/bridge/state`;
/** `<base>/bridge/info`: retained agent description. */
export const bridgeInfoTopic = (base: string): string => `${base}/bridge/info`;
/** `<base>/bridge/request/<cmd>`: commands from users and Home Assistant buttons. */
export const requestTopic = (base: string, cmd: string): string => `${base}/bridge/request/${cmd}`;
/** `<base>/bridge/response/<cmd>`: `{status, data, error?, transaction?}`. */
export const responseTopic = (base: string, cmd: string): string => `${base}/bridge/response/${cmd}`;
/** `<base>/<mailbox>/status`: retained MailboxStatus JSON. */
export const mailboxStatusTopic = (base: string, mailboxId: string): string => `${base}/${topicSegment(mailboxId)}/status`;
/** `<base>/rule/<rule>/event`: one `{"event_type": ...}` message per alert, read by the Home Assistant event entity. */
export const eventTopic = (base: string, rule: string): string => `${base}/rule/${topicSegment(rule)}/event`;
/** `<base>/rule/<rule>/image`: the latest attachment's raw bytes (retained), read by the Home Assistant image entity. */
export const imageTopic = (base: string, rule: string): string => `${base}/rule/${topicSegment(rule)}/image`;

/** `<base>/rule/<rule>/binary_sensor/<key>`: `ON` per alert (not retained), read by the rule's Home Assistant binary_sensor for that key. */
export const binarySensorTopic = (base: string, rule: string, key: string): string =>
  `${base}/rule/${topicSegment(rule)}/binary_sensor/${topicSegment(key)}`;

/** Mailbox ids that would collide with the agent's own topic levels. */
export const RESERVED_MAILBOX_IDS: readonly string[] = ['bridge', 'rule'];

/** The minimal alert fields the Home Assistant event message carries. */
export interface EventAlert {
  rule: string;
  mailbox: string;
  /** stable alert id (mailbox + UID) */
  id?: string;
  /** the event name the rule captured; default "alert" */
  event?: string;
  subject?: string;
  from?: string;
  date?: string;
}

export const DEFAULT_EVENT_TYPE = 'alert';

/** The JSON published on eventTopic(): `event_type` plus a few attributes Home Assistant shows on the event entity. */
export function eventPayload(alert: EventAlert): string {
  const out: Record<string, string> = { event_type: alert.event || DEFAULT_EVENT_TYPE, mailbox: alert.mailbox, rule: alert.rule };
  if (alert.id !== undefined) out.alert_id = alert.id;
  if (alert.subject !== undefined) out.subject = alert.subject;
  if (alert.from !== undefined) out.from = alert.from;
  if (alert.date !== undefined) out.date = alert.date;
  return JSON.stringify(out);
}

/** A name usable as one topic level: unchanged when safe, otherwise its unsafe characters replaced and a hash added. */
export function topicSegment(name: string): string {
  if (name !== '' && !/[/+#\u0000-\u001f\u007f]/.test(name)) return name;
  return `${name.replace(/[/+#\u0000-\u001f\u007f]/g, '_')}_${shortHash(name)}`;
}

/** A name usable in Home Assistant ids ([a-zA-Z0-9_-]): unchanged when already valid, otherwise slugged plus a hash (so distinct names stay distinct). */
export function idSegment(name: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(name)) return name;
  const slug = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '');
  return `${slug || 'x'}_${shortHash(name)}`;
}

function shortHash(s: string): string {
  return createHash('sha1').update(s).digest('hex').slice(0, 6);
}
