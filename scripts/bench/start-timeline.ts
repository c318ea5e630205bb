// Reads a start-trace.cjs trace of one `pop2mqtt once`: its milestones in ms since the process began (boot, modules, config, MQTT, POP3, alerts, exit), for profile-w1.ts --trace.

export interface TraceEvent { t: number; kind: string; what: string; ms?: number; self?: number; bytes?: number; wall0?: number }
export type Trace = TraceEvent[];

/** Milestones in ms since the process began; `alerts` are the subscriber's Date.now() at receipt, `endedAt` the parent's at exit. */
export function milestones(trace: Trace, alerts: number[], endedAt: number): Map<string, number> {
  const m = new Map<string, number>();
  const exit = trace.find((e) => e.kind === 'node' && e.what === 'exit');
  const wall0 = exit?.wall0 ?? NaN;
  const first = (kind: string, re: RegExp, end = false) => {
    const e = trace.filter((x) => x.kind === kind && re.test(x.what)).sort((a, b) => a.t - b.t)[0];
    return e ? e.t + (end ? e.ms ?? 0 : 0) : undefined;
  };
  const set = (name: string, v: number | undefined) => { if (v !== undefined && Number.isFinite(v)) m.set(name, v); };
  set('node bootstrap complete', first('node', /^bootstrapComplete$/));
  set('preload (start-trace.cjs) running', first('node', /^preload$/));
  set('main bundle evaluated', first('module', /^pop2mqtt\.cjs$/, true));
  set('once command and its imports evaluated', first('module', /^once-/, true));
  const modules = trace.filter((e) => e.kind === 'module');
  const pollEnd = first('log', / poll .*duration_ms=/) ?? Infinity;
  set('module compile+evaluate before the poll ended (self, sum)', modules.filter((e) => e.t < pollEnd).reduce((s, e) => s + (e.self ?? 0), 0));
  set('MQTT: connecting logged', first('log', /\[mqtt\] connecting/));
  const sockets = trace.filter((e) => e.kind === 'socket' && /^connect :/.test(e.what)).sort((a, b) => a.t - b.t);
  const ports = sockets.map((e) => e.what.slice('connect :'.length));
  const mqttPort = ports[0] !== undefined && trace.some((e) => e.what === `tls ready :${ports[0]}`) ? ports[1] : ports[0];
  const pop3Port = ports.find((p) => p !== mqttPort);
  set('MQTT: TCP connected', first('socket', new RegExp(`^connect :${mqttPort}$`)));
  set('MQTT: connected logged (CONNACK)', first('log', /\[mqtt\] connected/));
  set('agent started logged', first('log', /pop2mqtt started/));
  set('POP3: TCP connected', first('socket', new RegExp(`^connect :${pop3Port}$`)));
  set('POP3: TLS ready', first('socket', new RegExp(`^tls ready :${pop3Port}$`)));
  set('poll line logged (poll ended)', Number.isFinite(pollEnd) ? pollEnd : undefined);
  if (alerts.length) {
    set('first alert received', Math.min(...alerts) - wall0);
    set('last alert received', Math.max(...alerts) - wall0);
  }
  set('MQTT: disconnected logged', first('log', /\[mqtt\] disconnected/));
  set('agent stopped logged', first('log', /pop2mqtt stopped/));
  set('exit event', exit?.t);
  set('process gone (parent saw it)', endedAt - wall0);
  if (exit) set('— exit event → process gone, ms', endedAt - wall0 - exit.t);
  if (Number.isFinite(pollEnd)) set('— poll line → process gone, ms', endedAt - wall0 - pollEnd);
  return m;
}

/** One run's milestones and its raw events (modules with self time ≥ 1 ms, sockets, logs). */
export function printMilestones(label: string, trace: Trace, m: Map<string, number>): void {
  process.stdout.write(`\n${label}: one run\n`);
  for (const [k, v] of m) process.stdout.write(`  ${v.toFixed(1).padStart(8)}  ${k}\n`);
  const shown = [...trace].filter((e) => e.kind !== 'module' || (e.self ?? 0) >= 1).sort((a, b) => a.t - b.t);
  for (const e of shown) {
    const extra = e.kind === 'module' ? ` ${(e.bytes! / 1024).toFixed(0)} KB, ${e.ms!.toFixed(1)} ms (self ${e.self!.toFixed(1)})` : '';
    process.stdout.write(`  ${e.t.toFixed(1).padStart(8)}  ${e.kind.padEnd(7)} ${e.what}${extra}\n`);
  }
}
