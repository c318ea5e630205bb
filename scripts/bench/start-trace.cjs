// Timeline of one `pop2mqtt` process from its start, without touching its code: preloaded with `node -r`, it notes (ms since the process began, performance.now()) Node's boot, each file compiled, each socket's connect/TLS/first data/close, each log line, fsyncs and renames, and the exit; written as JSON to $P2M_START_TRACE at exit.
'use strict';
const { performance } = require('node:perf_hooks');
const fs = require('node:fs');
const path = require('node:path');
const dc = require('node:diagnostics_channel');
const Module = require('node:module');

const out = process.env.P2M_START_TRACE;
const events = [];
const now = () => performance.now();
const mark = (kind, what, extra) => events.push({ t: now(), kind, what, ...extra });

mark('node', 'preload');

// Files compiled: time inside _compile (the file's own evaluation, nested requires included; self time = minus children).
let depth = [];
const compile = Module.prototype._compile;
Module.prototype._compile = function (content, filename) {
  const rec = { t: now(), kind: 'module', what: path.basename(filename), bytes: content.length, nested: 0 };
  depth.push(rec);
  try {
    return compile.apply(this, arguments);
  } finally {
    depth.pop();
    rec.ms = now() - rec.t;
    rec.self = rec.ms - rec.nested;
    if (depth.length) depth[depth.length - 1].nested += rec.ms;
    events.push(rec);
  }
};

// Sockets: connect, TLS handshake done, first bytes in, close; named by remote port. tls.connect() does not go
// through net.connect(), whose diagnostics channel names net's sockets, so it is wrapped.
const watch = (socket, how) => {
  const name = () => `${socket.remotePort ?? socket._host ?? '?'}`;
  mark('socket', `${how} created`);
  socket.once('connect', () => mark('socket', `connect :${name()}`));
  socket.once('secureConnect', () => mark('socket', `tls ready :${name()}`));
  socket.once('data', () => mark('socket', `first data :${name()}`));
  socket.once('close', () => mark('socket', `close :${name()}`));
};
dc.subscribe('net.client.socket', ({ socket }) => watch(socket, 'net'));
const tls = require('node:tls');
const tlsConnect = tls.connect;
tls.connect = function () {
  const t = now();
  const socket = tlsConnect.apply(this, arguments);
  mark('socket', `tls.connect() returned after ${(now() - t).toFixed(1)} ms`);
  watch(socket, 'tls');
  return socket;
};

// Log lines (stderr), fsyncs and renames.
const write = process.stderr.write;
process.stderr.write = function (chunk) {
  const line = String(chunk).replace(/^\S+Z /, '').trim();
  if (line) mark('log', line.slice(0, 140));
  return write.apply(this, arguments);
};
let syncs = 0;
let renames = 0;
const fh = fs.promises.open;
fs.promises.open = async function () {
  const h = await fh.apply(this, arguments);
  const sync = h.sync;
  h.sync = function () { syncs++; return sync.apply(this, arguments); };
  return h;
};
const rename = fs.promises.rename;
fs.promises.rename = function () { renames++; return rename.apply(this, arguments); };

const logs = events;
let stoppedAt;
process.stderr.write = ((w) => function (chunk) {
  const r = w.apply(this, arguments);
  if (/pop2mqtt stopped/.test(String(chunk)) && stoppedAt === undefined) {
    stoppedAt = now();
    // What keeps the loop alive once the work is done.
    setImmediate(() => mark('handles', `after stop: ${process.getActiveResourcesInfo().join(', ')}`));
  }
  return r;
})(process.stderr.write);
process.on('beforeExit', () => mark('node', 'beforeExit'));
process.on('exit', () => {
  const nt = performance.nodeTiming;
  for (const k of ['v8Start', 'environment', 'bootstrapComplete', 'loopStart']) events.push({ t: nt[k], kind: 'node', what: k });
  mark('node', 'exit', { syncs, renames, wall0: Date.now() - now(), hr0: Number(process.hrtime.bigint() / 1000n) / 1000 - now() });
  if (out) fs.writeFileSync(out, JSON.stringify(logs));
});
