// What Home Assistant discovery announces: the agent's mailboxes and rules as devices and entities.

/** One mailbox as Home Assistant sees it: a device with sensors and a "Poll now" button. */
export interface HaMailbox {
  id: string;
  name?: string;
  host?: string;
}

/** One rule as Home Assistant sees it: an event entity, plus an image entity when it publishes attachments. */
export interface HaRule {
  name: string;
  /** the event names the rule can emit; default ["alert"] */
  event_types?: string[];
  /** Home Assistant event device class: button, doorbell or motion */
  device_class?: 'button' | 'doorbell' | 'motion';
  /** binary_sensor entities of the rule (homeassistant.binary_sensor): one per key seen so far */
  binary_sensor?: {
    device_class: string;
    /** whole seconds, at least 1 */
    off_delay: number;
    entities: { key: string; name: string }[];
  };
  /** present when the rule publishes attachments for Home Assistant */
  image?: {
    /** concrete topic (no wildcards, no template) with the raw image bytes; default imageTopic(base, rule) */
    topic?: string;
    /** default image/jpeg */
    content_type?: string;
  };
}

/** What discovery announces. */
export interface HaModel {
  mailboxes: HaMailbox[];
  rules: HaRule[];
}
