// POP2MQTT_LOG_LEVEL: the environment overrides the config's log_level; an unknown value is ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveLogLevel } from '../../src/log.js';

test('POP2MQTT_LOG_LEVEL wins over log_level; unknown values fall back to the config, then info', () => {
  assert.equal(effectiveLogLevel('warn', {}), 'warn');
  assert.equal(effectiveLogLevel('warn', { POP2MQTT_LOG_LEVEL: 'debug' }), 'debug');
  assert.equal(effectiveLogLevel('debug', { POP2MQTT_LOG_LEVEL: ' ERROR ' }), 'error');
  assert.equal(effectiveLogLevel('warn', { POP2MQTT_LOG_LEVEL: 'verbose' }), 'warn');
  assert.equal(effectiveLogLevel(undefined, {}), 'info');
});

test('log_format json: one JSON object per line with the text format\'s content; secrets in field values masked; reserved keys kept', async () => {
  const { createLogger, registerSecret } = await import('../../src/log.js');
  registerSecret('hunter2-json-secret');
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }).child('home');
  log.info('poll', { messages: 3, new: 1, error: 'login with hunter2-json-secret refused', mailbox: 'home', msg: 'x' });
  log.debug('authenticating', { mechanism: 'plain' });
  assert.equal(lines.length, 2);
  const a = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.match(a.time as string, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual({ ...a, time: undefined }, { time: undefined, level: 'info', scope: 'home', msg: 'poll', messages: 3, new: 1, error: 'login with *** refused', mailbox: 'home', field_msg: 'x' });
  assert.equal((JSON.parse(lines[1]!) as { level: string }).level, 'debug');
  assert.ok(!lines.join('\n').includes('hunter2-json-secret'));
});
