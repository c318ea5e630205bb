// Home Assistant MQTT discovery: turns the agent's model (mailboxes, rules) into retained config messages.
import { DEFAULT_EVENT_TYPE, binarySensorTopic, eventTopic, idSegment, imageTopic, mailboxStatusTopic, requestTopic, bridgeStateTopic } from '../mqtt/topics.js';
import type { HaModel } from './types.js';

export type HaComponent = 'event' | 'image' | 'sensor' | 'binary_sensor' | 'button';

export interface DiscoveryMessage {
  component: HaComponent;
  /** `<prefix>/<component>/<node_id>/<object_id>/config` */
  topic: string;
  uniqueId: string;
  payload: Record<string, unknown>;
}

export interface DiscoveryContext {
  base: string;
  prefix: string;
  version: string;
  supportUrl?: string;
}

/** Where users find documentation and issues; shown by Home Assistant in the origin block. */
export const DEFAULT_SUPPORT_URL = 'https://github.com/pop2mqtt/pop2mqtt';
export const DEFAULT_IMAGE_CONTENT_TYPE = 'image/jpeg';

/** The discovery node id of this agent: every config we publish sits under `<prefix>/<component>/<node_id>/`. */
export function discoveryNodeId(base: string): string {
  return base === 'pop2mqtt' ? 'pop2mqtt' : `pop2mqtt_${idSegment(base)}`;
}

/** MQTT filter matching every discovery config this agent may have published (for stale-entity cleanup). */
export function discoveryFilter(prefix: string, base: string): string {
  return `${prefix}/+/${discoveryNodeId(base)}/+/config`;
}

export interface DiscoveryResult {
  messages: DiscoveryMessage[];
  /** human-readable problems (duplicate ids, bad image topics); those entities are left out */
  problems: string[];
}

/** Builds every discovery config for `model`. Pure: same input, same output. */
export function buildDiscovery(model: HaModel, ctx: DiscoveryContext): DiscoveryResult {
  const node = discoveryNodeId(ctx.base);
  const bridgeId = `${node}_bridge`;
  const messages: DiscoveryMessage[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();

  const origin = { name: 'pop2mqtt', sw_version: ctx.version, support_url: ctx.supportUrl ?? DEFAULT_SUPPORT_URL };
  const availability = [{
    topic: bridgeStateTopic(ctx.base),
    value_template: '{{ value_json.state }}',
    payload_available: 'online',
    payload_not_available: 'offline',
  }];
  const bridgeDevice = {
    identifiers: [bridgeId],
    name: ctx.base === 'pop2mqtt' ? 'pop2mqtt' : `pop2mqtt ${ctx.base}`,
    model: 'pop2mqtt agent',
    manufacturer: 'pop2mqtt',
    sw_version: ctx.version,
  };

  const add = (component: HaComponent, objectId: string, device: Record<string, unknown>, fields: Record<string, unknown>) => {
    const uniqueId = `${node}_${objectId}`;
    if (seen.has(uniqueId)) {
      problems.push(`duplicate Home Assistant unique_id ${uniqueId}; entity left out`);
      return;
    }
    seen.add(uniqueId);
    messages.push({
      component,
      topic: `${ctx.prefix}/${component}/${node}/${objectId}/config`,
      uniqueId,
      payload: { ...fields, unique_id: uniqueId, device, origin, availability },
    });
  };

  add('button', 'poll_all', bridgeDevice, {
    name: 'Poll all mailboxes',
    command_topic: requestTopic(ctx.base, 'poll'),
    payload_press: '{}',
    icon: 'mdi:email-sync',
  });

  for (const rule of model.rules) {
    const key = idSegment(rule.name);
    const eventTypes = rule.event_types && rule.event_types.length ? [...new Set(rule.event_types)] : [DEFAULT_EVENT_TYPE];
    const fields: Record<string, unknown> = {
      name: rule.name,
      state_topic: eventTopic(ctx.base, rule.name),
      event_types: eventTypes,
      icon: 'mdi:email-alert',
    };
    if (rule.device_class) fields.device_class = rule.device_class;
    add('event', `rule_${key}_event`, bridgeDevice, fields);
    for (const e of rule.binary_sensor?.entities ?? []) {
      add('binary_sensor', `rule_${key}_bs_${idSegment(e.key)}`, bridgeDevice, {
        name: e.name,
        state_topic: binarySensorTopic(ctx.base, rule.name, e.key),
        payload_on: 'ON',
        payload_off: 'OFF',
        device_class: rule.binary_sensor!.device_class,
        off_delay: rule.binary_sensor!.off_delay,
      });
    }
    if (rule.image) {
      const topic = rule.image.topic ?? imageTopic(ctx.base, rule.name);
      if (!topic || /[+#\0]/.test(topic) || topic.includes('{{')) {
        problems.push(`rule ${rule.name}: image topic ${JSON.stringify(topic)} is not a concrete topic; image entity left out`);
        continue;
      }
      add('image', `rule_${key}_image`, bridgeDevice, {
        name: `${rule.name} image`,
        image_topic: topic,
        content_type: rule.image.content_type || DEFAULT_IMAGE_CONTENT_TYPE,
      });
    }
  }

  for (const mb of model.mailboxes) {
    const key = idSegment(mb.id);
    const device = {
      identifiers: [`${node}_mailbox_${key}`],
      name: mb.name || mb.id,
      model: 'POP3 mailbox',
      manufacturer: 'pop2mqtt',
      sw_version: ctx.version,
      via_device: bridgeId,
    };
    const statusTopic = mailboxStatusTopic(ctx.base, mb.id);
    const sensor = (suffix: string, fields: Record<string, unknown>) =>
      add('sensor', `mailbox_${key}_${suffix}`, device, { state_topic: statusTopic, ...fields });
    sensor('last_poll', { name: 'Last poll', value_template: '{{ value_json.last_poll }}', device_class: 'timestamp', icon: 'mdi:email-check' });
    sensor('new_messages', { name: 'New messages', value_template: '{{ value_json.new }}', state_class: 'measurement', icon: 'mdi:email-plus' });
    sensor('messages', { name: 'Messages on server', value_template: '{{ value_json.messages }}', state_class: 'measurement', icon: 'mdi:email-multiple' });
    sensor('alerts_today', { name: 'Alerts today', value_template: '{{ value_json.alerts_today }}', state_class: 'total_increasing', icon: 'mdi:email-alert' });
    sensor('bytes_total', {
      name: 'Bytes transferred', value_template: '{{ value_json.bytes_total }}',
      unit_of_measurement: 'B', device_class: 'data_size', state_class: 'total_increasing', entity_category: 'diagnostic',
    });
    sensor('bytes_last_poll', {
      name: 'Bytes last poll', value_template: '{{ value_json.bytes_last_poll }}',
      unit_of_measurement: 'B', device_class: 'data_size', state_class: 'measurement', entity_category: 'diagnostic',
    });
    add('binary_sensor', `mailbox_${key}_connection_problem`, device, {
      name: 'Connection problem',
      state_topic: statusTopic,
      value_template: "{{ 'ON' if value_json.connection_problem else 'OFF' }}",
      payload_on: 'ON',
      payload_off: 'OFF',
      device_class: 'problem',
      entity_category: 'diagnostic',
    });
    add('button', `mailbox_${key}_poll`, device, {
      name: 'Poll now',
      command_topic: requestTopic(ctx.base, 'poll'),
      payload_press: JSON.stringify({ mailbox: mb.id }),
      icon: 'mdi:email-sync',
    });
  }
  return { messages, problems };
}
