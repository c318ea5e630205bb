// Unit tests of Home Assistant discovery payloads, checked field by field against HA's documented MQTT schemas per platform.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDiscovery, discoveryFilter, discoveryNodeId, type DiscoveryMessage } from '../../src/homeassistant/discovery.js';
import { topicMatches } from '../../src/mqtt/topic-match.js';
import { binarySensorTopic, bridgeStateTopic, eventTopic, imageTopic, mailboxStatusTopic, requestTopic } from '../../src/mqtt/topics.js';
import type { MailboxStatus } from '../../src/mqtt/types.js';
import type { HaModel } from '../../src/homeassistant/types.js';

// Keys Home Assistant's MQTT platforms accept (home-assistant.io/integrations/<platform>.mqtt, "Configuration Variables").
const COMMON = new Set([
  'availability', 'availability_mode', 'availability_template', 'availability_topic', 'device', 'enabled_by_default',
  'encoding', 'entity_category', 'entity_picture', 'icon', 'json_attributes_template', 'json_attributes_topic', 'name',
  'default_entity_id', 'origin', 'payload_available', 'payload_not_available', 'platform', 'qos', 'unique_id',
]);
const PLATFORM: Record<string, { required: string[]; optional: string[] }> = {
  event: { required: ['state_topic', 'event_types'], optional: ['device_class', 'value_template'] },
  image: { required: [], optional: ['image_topic', 'url_topic', 'content_type', 'image_encoding', 'url_template'] },
  sensor: {
    required: ['state_topic'],
    optional: ['device_class', 'expire_after', 'force_update', 'last_reset_value_template', 'options',
      'suggested_display_precision', 'state_class', 'unit_of_measurement', 'value_template'],
  },
  binary_sensor: {
    required: ['state_topic'],
    optional: ['device_class', 'expire_after', 'force_update', 'off_delay', 'payload_off', 'payload_on', 'value_template'],
  },
  button: { required: ['command_topic'], optional: ['command_template', 'device_class', 'payload_press', 'retain'] },
};
const DEVICE_KEYS = new Set(['configuration_url', 'connections', 'hw_version', 'identifiers', 'manufacturer', 'model', 'model_id',
  'name', 'serial_number', 'suggested_area', 'sw_version', 'via_device']);
const ORIGIN_KEYS = new Set(['name', 'sw_version', 'support_url']);
const SENSOR_STATE_CLASSES = new Set(['measurement', 'measurement_angle', 'total', 'total_increasing']);
const EVENT_DEVICE_CLASSES = new Set(['button', 'doorbell', 'motion']);

const model: HaModel = {
  mailboxes: [{ id: 'nvr', name: 'NVR mailbox', host: 'mail.example' }, { id: 'ups', host: 'mail.example' }],
  rules: [
    { name: 'gate_motion', event_types: ['motion', 'tamper', 'motion'], device_class: 'motion', image: { content_type: 'image/jpeg' } },
    { name: 'ups.alarm' },
    { name: 'cam2', image: { topic: 'pop2mqtt/cams/2/snapshot' } },
    { name: 'templated', image: { topic: 'pop2mqtt/{{camera}}/snap' } },
    {
      name: 'cam_motion',
      binary_sensor: { device_class: 'motion', off_delay: 30, entities: [{ key: 'Driveway', name: 'Driveway motion' }, { key: 'Back Yard/2', name: 'Back Yard/2 motion' }] },
    },
  ],
};
const ctx = { base: 'pop2mqtt', prefix: 'homeassistant', version: '1.2.3' };
const { messages, problems } = buildDiscovery(model, ctx);
const byId = new Map(messages.map((m) => [m.uniqueId, m]));
const get = (id: string): DiscoveryMessage => {
  const m = byId.get(id);
  assert.ok(m, `entity ${id} announced`);
  return m;
};

test('every config has only documented keys for its platform and all required ones', () => {
  assert.ok(messages.length > 0);
  for (const m of messages) {
    const spec = PLATFORM[m.component]!;
    for (const k of spec.required) assert.ok(m.payload[k] !== undefined && m.payload[k] !== '', `${m.uniqueId}: ${k} required`);
    for (const k of Object.keys(m.payload)) {
      assert.ok(COMMON.has(k) || spec.required.includes(k) || spec.optional.includes(k), `${m.uniqueId}: ${k} is not a ${m.component} option`);
    }
    assert.equal(typeof m.payload.name, 'string');
    assert.equal(m.payload.unique_id, m.uniqueId);
    assert.equal(m.topic, `homeassistant/${m.component}/pop2mqtt/${m.uniqueId.slice('pop2mqtt_'.length)}/config`);
    assert.match(m.topic.split('/')[3]!, /^[a-zA-Z0-9_-]+$/, 'object_id charset');
    if (m.payload.entity_category !== undefined) {
      assert.ok(['config', 'diagnostic'].includes(m.payload.entity_category as string));
      if (m.component === 'sensor' || m.component === 'binary_sensor') assert.equal(m.payload.entity_category, 'diagnostic', 'sensors cannot be config');
    }
  }
});

test('unique_id format is pop2mqtt_<...>, unique, and stable across builds', () => {
  const ids = messages.map((m) => m.uniqueId);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(id, /^pop2mqtt_[a-zA-Z0-9_-]+$/);
  assert.deepEqual(buildDiscovery(model, ctx).messages, messages, 'same input, same output');
  const other = buildDiscovery(model, { ...ctx, base: 'home/p2m' }).messages;
  for (const m of other) assert.match(m.uniqueId, /^pop2mqtt_home_p2m_[0-9a-f]{6}_/, 'non-default base topic gets its own namespace');
  assert.equal(discoveryNodeId('pop2mqtt'), 'pop2mqtt');
  for (const m of other) assert.ok(topicMatches(discoveryFilter('homeassistant', 'home/p2m'), m.topic), 'cleanup filter covers every config');
  for (const m of messages) assert.ok(topicMatches(discoveryFilter('homeassistant', 'pop2mqtt'), m.topic));
});

test('devices: one agent device, one per mailbox via_device -> agent; origin block', () => {
  const agentIds = new Set<string>();
  for (const m of messages) {
    const dev = m.payload.device as Record<string, unknown>;
    for (const k of Object.keys(dev)) assert.ok(DEVICE_KEYS.has(k), `device key ${k}`);
    for (const k of ['identifiers', 'name', 'model', 'manufacturer', 'sw_version']) assert.ok(dev[k], `device.${k}`);
    assert.equal(dev.sw_version, '1.2.3');
    const origin = m.payload.origin as Record<string, unknown>;
    for (const k of Object.keys(origin)) assert.ok(ORIGIN_KEYS.has(k));
    assert.equal(origin.name, 'pop2mqtt');
    assert.equal(origin.sw_version, '1.2.3');
    assert.doesNotThrow(() => new URL(origin.support_url as string));
    if (!dev.via_device) agentIds.add((dev.identifiers as string[])[0]!);
  }
  assert.deepEqual([...agentIds], ['pop2mqtt_bridge']);
  const nvr = get('pop2mqtt_mailbox_nvr_last_poll').payload.device as Record<string, unknown>;
  assert.deepEqual(nvr.identifiers, ['pop2mqtt_mailbox_nvr']);
  assert.equal(nvr.via_device, 'pop2mqtt_bridge');
  assert.equal(nvr.name, 'NVR mailbox');
  assert.equal((get('pop2mqtt_mailbox_ups_last_poll').payload.device as Record<string, unknown>).name, 'ups', 'name defaults to id');
});

test('availability is tied to bridge/state with a value_template', () => {
  for (const m of messages) {
    assert.deepEqual(m.payload.availability, [{
      topic: 'pop2mqtt/bridge/state', value_template: '{{ value_json.state }}', payload_available: 'online', payload_not_available: 'offline',
    }]);
  }
});

test('event entities: one per rule, event_types from the rule or ["alert"], state_topic = eventTopic()', () => {
  const gate = get('pop2mqtt_rule_gate_motion_event').payload;
  assert.deepEqual(gate.event_types, ['motion', 'tamper'], 'deduplicated, order kept');
  assert.equal(gate.state_topic, eventTopic('pop2mqtt', 'gate_motion'));
  assert.ok(EVENT_DEVICE_CLASSES.has(gate.device_class as string));
  const ups = messages.find((m) => m.component === 'event' && m.payload.name === 'ups.alarm');
  assert.ok(ups, 'rule with a dot in its name gets an entity');
  assert.deepEqual(ups.payload.event_types, ['alert']);
  assert.equal(ups.payload.state_topic, 'pop2mqtt/rule/ups.alarm/event');
  assert.match(ups.uniqueId, /^pop2mqtt_rule_ups_alarm_[0-9a-f]{6}_event$/);
  assert.equal(messages.filter((m) => m.component === 'event').length, model.rules.length);
});

test('image entities: only for rules publishing attachments, concrete image_topic, content_type', () => {
  const gate = get('pop2mqtt_rule_gate_motion_image').payload;
  assert.equal(gate.image_topic, imageTopic('pop2mqtt', 'gate_motion'));
  assert.equal(gate.content_type, 'image/jpeg');
  assert.equal(gate.url_topic, undefined, 'image_topic and url_topic are exclusive');
  const cam2 = get('pop2mqtt_rule_cam2_image').payload;
  assert.equal(cam2.image_topic, 'pop2mqtt/cams/2/snapshot');
  assert.equal(cam2.content_type, 'image/jpeg', 'default content type');
  assert.equal(byId.has('pop2mqtt_rule_ups.alarm_image'), false);
  assert.equal(byId.has('pop2mqtt_rule_templated_image'), false, 'templated topic cannot be an HA image topic');
  assert.ok(problems.some((p) => p.includes('templated')));
  assert.equal(messages.filter((m) => m.component === 'image').length, 2);
});

test('mailbox sensors read <base>/<id>/status fields that MailboxStatus has', () => {
  const status: MailboxStatus = {
    last_poll: '2024-05-01T10:00:00.000Z', result: 'ok', messages: 3, new: 1, alerts: 1, alerts_today: 4,
    bytes_last_poll: 120, bytes_total: 4000, next_poll: null, connection_problem: false,
  };
  const expectations: Record<string, { field: string; extra?: Record<string, unknown> }> = {
    last_poll: { field: 'last_poll', extra: { device_class: 'timestamp' } },
    new_messages: { field: 'new' },
    messages: { field: 'messages' },
    alerts_today: { field: 'alerts_today' },
    bytes_total: { field: 'bytes_total', extra: { unit_of_measurement: 'B', device_class: 'data_size' } },
    bytes_last_poll: { field: 'bytes_last_poll', extra: { unit_of_measurement: 'B', device_class: 'data_size' } },
  };
  for (const mb of model.mailboxes) {
    for (const [suffix, exp] of Object.entries(expectations)) {
      const p = get(`pop2mqtt_mailbox_${mb.id}_${suffix}`).payload;
      assert.equal(p.state_topic, mailboxStatusTopic('pop2mqtt', mb.id));
      assert.equal(p.value_template, `{{ value_json.${exp.field} }}`);
      assert.ok(exp.field in status, `${exp.field} is a MailboxStatus field`);
      for (const [k, v] of Object.entries(exp.extra ?? {})) assert.equal(p[k], v, `${suffix}.${k}`);
      if (p.state_class !== undefined) assert.ok(SENSOR_STATE_CLASSES.has(p.state_class as string));
      if (p.device_class === 'timestamp') assert.equal(p.state_class, undefined, 'timestamp sensors have no state_class');
    }
    const problem = get(`pop2mqtt_mailbox_${mb.id}_connection_problem`);
    assert.equal(problem.component, 'binary_sensor');
    assert.equal(problem.payload.device_class, 'problem');
    assert.equal(problem.payload.state_topic, mailboxStatusTopic('pop2mqtt', mb.id));
    assert.match(problem.payload.value_template as string, /value_json\.connection_problem/);
    const button = get(`pop2mqtt_mailbox_${mb.id}_poll`);
    assert.equal(button.component, 'button');
    assert.equal(button.payload.command_topic, 'pop2mqtt/bridge/request/poll');
    assert.deepEqual(JSON.parse(button.payload.payload_press as string), { mailbox: mb.id });
  }
});

test('every referenced topic is one the agent publishes or subscribes to', () => {
  const published = new Set<string>([bridgeStateTopic('pop2mqtt')]);
  for (const mb of model.mailboxes) published.add(mailboxStatusTopic('pop2mqtt', mb.id));
  for (const r of model.rules) {
    published.add(eventTopic('pop2mqtt', r.name));
    if (r.image) published.add(r.image.topic ?? imageTopic('pop2mqtt', r.name));
    for (const e of r.binary_sensor?.entities ?? []) published.add(binarySensorTopic('pop2mqtt', r.name, e.key));
  }
  const subscribed = [requestTopic('pop2mqtt', '+')]; // what Bridge.start() subscribes to
  for (const m of messages) {
    for (const key of ['state_topic', 'image_topic']) {
      if (m.payload[key] !== undefined) assert.ok(published.has(m.payload[key] as string), `${m.uniqueId}.${key}`);
    }
    for (const a of m.payload.availability as Array<{ topic: string }>) assert.ok(published.has(a.topic));
    if (m.payload.command_topic !== undefined) {
      assert.ok(subscribed.some((f) => topicMatches(f, m.payload.command_topic as string)), `${m.uniqueId}.command_topic`);
    }
  }
});

test('binary_sensor entities: one per key, ON/OFF payloads, device_class and off_delay in whole seconds, ids safe', () => {
  const d = get('pop2mqtt_rule_cam_motion_bs_Driveway').payload;
  assert.equal(d.state_topic, 'pop2mqtt/rule/cam_motion/binary_sensor/Driveway');
  assert.equal(d.name, 'Driveway motion');
  assert.equal(d.payload_on, 'ON');
  assert.equal(d.payload_off, 'OFF');
  assert.equal(d.device_class, 'motion');
  assert.equal(d.off_delay, 30);
  assert.ok(Number.isInteger(d.off_delay) && (d.off_delay as number) >= 1);
  assert.equal(d.entity_category, undefined, 'a motion sensor is a primary entity, not diagnostic');
  const other = messages.filter((m) => m.component === 'binary_sensor' && m.uniqueId.startsWith('pop2mqtt_rule_cam_motion_bs_'));
  assert.equal(other.length, 2);
  const odd = other.find((m) => m.payload.name === 'Back Yard/2 motion')!;
  assert.match(odd.uniqueId, /^pop2mqtt_rule_cam_motion_bs_back_yard_2_[0-9a-f]{6}$/);
  assert.doesNotMatch(odd.payload.state_topic as string, /Yard\/2/, 'a "/" in the value never adds a topic level');
});

test('"Poll all" button on the agent device sends an empty-object poll request', () => {
  const p = get('pop2mqtt_poll_all').payload;
  assert.equal(p.command_topic, 'pop2mqtt/bridge/request/poll');
  assert.deepEqual(JSON.parse(p.payload_press as string), {});
});
