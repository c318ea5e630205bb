// Proves when the IPv6-regex compile trick stands back (switched off, a user's regexp/JIT flags) and that it runs once and leaves net.isIP answering as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { compileIpRegexOnce, ipRegexCompileAllowed } from '../../src/ip-regex-compile.js';

const V20 = '11.3.244.8-node.38';

test('allowed by default on a measured V8; not with POP2MQTT_HEAP_POLICY=off, another V8, or a regexp/JIT flag given', () => {
  const allowed = (execArgv: string[], env: NodeJS.ProcessEnv = {}, v8Version = V20) => ipRegexCompileAllowed({ env, execArgv, v8Version });
  assert.equal(allowed([]), true);
  assert.equal(allowed(['--max-old-space-size=64']), true);
  assert.equal(allowed([], { POP2MQTT_HEAP_POLICY: 'off' }), false);
  assert.equal(allowed([], {}, '13.6.233.10-node.18'), false);
  assert.equal(allowed(['--regexp-tier-up']), false);
  assert.equal(allowed(['--jitless']), false);
  assert.equal(allowed([], { NODE_OPTIONS: '--lite-mode' }), false);
  assert.equal(allowed([], { NODE_OPTIONS: '--no-regexp-interpret-all' }), false);
});

test('compiles at most once per process, and net.isIP answers as before', () => {
  const first = compileIpRegexOnce({ env: {}, execArgv: [], v8Version: V20 });
  assert.equal(first, true);
  assert.equal(compileIpRegexOnce({ env: {}, execArgv: [], v8Version: V20 }), false);
  assert.equal(net.isIP('pop3.example.org'), 0);
  assert.equal(net.isIP('2001:db8::1'), 6);
  assert.equal(net.isIP('192.0.2.1'), 4);
  assert.equal(net.isIPv6('fe80::1%eth0'), true);
});
