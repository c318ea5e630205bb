// Unit tests of MQTT wildcard matching, backoff bounds, and topic/id helpers used by the MQTT side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { topicMatches } from '../../src/mqtt/topic-match.js';
import { reconnectDelay } from '../../src/backoff.js';
import { eventPayload, eventTopic, idSegment, imageTopic, mailboxStatusTopic, topicSegment } from '../../src/mqtt/topics.js';

test('topicMatches: exact, + and # per MQTT 3.1.1 4.7', () => {
  assert.equal(topicMatches('a/b', 'a/b'), true);
  assert.equal(topicMatches('a/b', 'a/c'), false);
  assert.equal(topicMatches('a/+', 'a/b'), true);
  assert.equal(topicMatches('a/+', 'a/b/c'), false);
  assert.equal(topicMatches('a/+/c', 'a/x/c'), true);
  assert.equal(topicMatches('a/#', 'a'), true, '# also matches the parent level');
  assert.equal(topicMatches('a/#', 'a/b/c'), true);
  assert.equal(topicMatches('#', 'a/b'), true);
  assert.equal(topicMatches('+', '$SYS'), false, 'leading wildcard does not match $ topics');
  assert.equal(topicMatches('#', '$SYS/x'), false);
  assert.equal(topicMatches('+/+', 'a/'), true, 'empty level is a level');
  assert.equal(topicMatches('a/b/c', 'a/b'), false);
  assert.equal(topicMatches('homeassistant/+/pop2mqtt/+/config', 'homeassistant/sensor/pop2mqtt/mailbox_x_new/config'), true);
  assert.equal(topicMatches('homeassistant/+/pop2mqtt/+/config', 'homeassistant/sensor/other/mailbox_x_new/config'), false);
});

test('topicMatches: a topic always matches itself and "#"', () => {
  const level = fc.stringMatching(/^[a-z0-9_]{0,5}$/);
  fc.assert(fc.property(fc.array(level, { minLength: 1, maxLength: 5 }), (levels) => {
    const t = levels.join('/');
    return topicMatches(t, t) && topicMatches('#', t) && topicMatches(levels.map(() => '+').join('/'), t);
  }));
});

test('reconnectDelay: within [min, max], grows exponentially, jitter in the upper half', () => {
  const b = { min: 1000, max: 60_000 };
  assert.equal(reconnectDelay(0, b, () => 1), 1000);
  assert.equal(reconnectDelay(0, b, () => 0), 1000, 'never below min');
  assert.equal(reconnectDelay(3, b, () => 1), 8000);
  assert.equal(reconnectDelay(3, b, () => 0), 4000);
  assert.equal(reconnectDelay(20, b, () => 1), 60_000, 'capped at max');
  assert.equal(reconnectDelay(1000, b, () => 0.5), 45_000);
  fc.assert(fc.property(fc.nat(200), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 100_000 }),
    (attempt, r, min, extra) => {
      const d = reconnectDelay(attempt, { min, max: min + extra }, () => r);
      return d >= min && d <= min + extra;
    }));
});

test('topic helpers: event/image/status topics, injective segments', () => {
  assert.equal(eventTopic('pop2mqtt', 'front_door'), 'pop2mqtt/rule/front_door/event');
  assert.equal(imageTopic('pop2mqtt', 'cam.1'), 'pop2mqtt/rule/cam.1/image');
  assert.equal(mailboxStatusTopic('home/p2m', 'nvr'), 'home/p2m/nvr/status');
  assert.notEqual(topicSegment('a/b'), topicSegment('a+b'), 'different names stay different');
  assert.doesNotMatch(topicSegment('a/b#'), /[/+#]/);
  assert.equal(idSegment('cam-1_x'), 'cam-1_x');
  assert.match(idSegment('Front Door.cam'), /^[A-Za-z0-9_-]+$/);
  assert.notEqual(idSegment('a.b'), idSegment('a_b'), 'slugging adds a hash so a.b and a_b differ');
});

test('eventPayload: event_type defaults to "alert" and carries the attributes', () => {
  assert.deepEqual(JSON.parse(eventPayload({ rule: 'r', mailbox: 'm' })), { event_type: 'alert', mailbox: 'm', rule: 'r' });
  const p = JSON.parse(eventPayload({ rule: 'r', mailbox: 'm', id: 'm:1', event: 'motion', subject: 'Motion at gate', from: 'cam@x', date: '2024-01-01T00:00:00Z' }));
  assert.equal(p.event_type, 'motion');
  assert.equal(p.alert_id, 'm:1');
  assert.equal(p.subject, 'Motion at gate');
});
