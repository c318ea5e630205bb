// Node's IPv6 regex (net.isIP, run on every TLS name) compiled straight to native code once per process: a V8-flag trick kept apart from the TLS policy that needs it.
//
// Node runs every TLS name through net.isIP (pop2mqtt's verification options, tls.connect for the SNI,
// checkServerIdentity), and a host name through its IPv6 regex, a large one: V8 compiles it to bytecode for its
// regexp interpreter at the first use (about 10 ms of a first connect), then to native code at the second (about
// 3 ms). Compiled straight to native code once per process it costs the 3 ms alone (Node 20, docs/bench.md "W1
// first-poll time"). Like heap-policy.ts and compiler-tiers.ts, a user's own V8 flags for regexps or the JIT
// (execArgv, NODE_OPTIONS) and POP2MQTT_HEAP_POLICY=off leave V8 alone.
import * as net from 'node:net';
import v8 from 'node:v8';
import { v8FlagsGiven, type V8FlagsInput } from './v8-flags-given.js';

let ipRegexCompiled = false;

/** Whether pop2mqtt may set the regexp flags: not when switched off, not under a regexp/JIT flag the process was started with. */
export function ipRegexCompileAllowed(o: V8FlagsInput = {}): boolean {
  const given = v8FlagsGiven(o);
  return given !== undefined && !given.some((a) => /regexp|jitless|lite.mode/.test(a));
}

/** Before the first TLS name is checked: compiles Node's IPv6 regex to native code; true when this call did (at most once). */
export function compileIpRegexOnce(o: V8FlagsInput = {}): boolean {
  if (ipRegexCompiled) return false;
  ipRegexCompiled = true;
  if (!ipRegexCompileAllowed(o)) return false;
  v8.setFlagsFromString('--no-regexp-tier-up');
  try {
    net.isIPv6('pop3.invalid');
  } finally {
    v8.setFlagsFromString('--regexp-tier-up');
  }
  return true;
}
