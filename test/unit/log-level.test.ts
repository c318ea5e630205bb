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
