// Quick memory reproduction of bench workloads W1, W4 and the idle one-shot poll: peak RSS side by side, optionally with a process.memoryUsage() profile.
// Usage: node --import tsx scripts/bench/memory-w4.ts [--messages N] [--seed S] [--runs N] [--profile] [--trace-gc] [--node-arg=--flag ...] [--bundle FILE | --binary FILE] [--show-output] [--env K=V ...] [--json]
// --json: a last stdout line `MEMW4-JSON {...}` with every row (npm run bench reads it for its W4 300-message rows).
//
// Same corpus, rules, config and bundle as `npm run bench` (scripts/bench/main.ts), without relay, rawlog or fetchmail:
// every measured run is `node <bundle> once` under /usr/bin/time -v (peak RSS), straight to Dovecot's POP3S port.
//  - W1: first poll from fresh state, header-only rules;
//  - idle: `once` again on W1's state (nothing new: STAT + UIDL);
//  - W4: first poll from fresh state with the body rule (RETR of the snapshot alarms, JPEGs published).
// --profile preloads a sampler (a CommonJS file written to the temp dir) that reads process.memoryUsage() every 2 ms
// and prints, at exit, the maximum of each field and the whole reading at the RSS peak (plus V8 heap spaces there),
// and a coarse timeline. --show-output prints each measured run's stdout and stderr; --env sets variables for it
// (e.g. --env MALLOC_ARENA_MAX=1, as the systemd unit does). --binary runs a single binary (dist/pop2mqtt-linux-x64) instead of node and the bundle. --node-arg passes V8/Node flags to the measured process (e.g. --node-arg=--max-semi-space-size=4).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDovecot } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { subscribe } from '../../test/support/mqtt-subscriber.js';
import { corpus } from './corpus.js';
import { AgentHarness, headerRules, snapshotRules } from './agent.js';
import { timedRun } from './proc.js';
import { dropPageCache } from '../binaries/page-cache.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    runs: { type: 'string', default: '1' },
    profile: { type: 'boolean', default: false },
    'trace-gc': { type: 'boolean', default: false },
    'node-arg': { type: 'string', multiple: true, default: [] },
    bundle: { type: 'string' },
    binary: { type: 'string' },
    'show-output': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const MESSAGES = Number(values.messages);
const SEED = Number(values.seed);
const RUNS = Number(values.runs);
if (!Number.isInteger(MESSAGES) || MESSAGES < 10) throw new Error('--messages must be an integer >= 10');
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be an integer >= 1');
const USER = 'bench';
const PASS = 'bench-Pop3-pw-8472';
const log = (s: string) => process.stderr.write(`[memory-w4] ${s}\n`);

/** Preloaded into the measured process with --profile (plain CommonJS: it runs before the bundle, without tsx). */
const SAMPLER = `'use strict';
const v8 = require('node:v8');
const t0 = Date.now();
const max = {};
let peak = null;
let spaces = null;
const timeline = [];
let lastT = -1;
function sample() {
  const m = process.memoryUsage();
  for (const k of Object.keys(m)) if (!(k in max) || m[k] > max[k]) max[k] = m[k];
  const t = Date.now() - t0;
  if (!peak || m.rss > peak.rss + (1 << 20)) {
    peak = Object.assign({ t }, m);
    spaces = v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size, s.space_used_size]);
  } else if (m.rss > peak.rss) peak = Object.assign({ t }, m);
  if (t - lastT >= 100) { lastT = t; timeline.push([t, m.rss, m.heapTotal, m.heapUsed, m.external, m.arrayBuffers]); }
}
setInterval(sample, 2).unref();
process.on('exit', () => {
  sample();
  process.stderr.write('MEMPROFILE ' + JSON.stringify({ max, peak, spaces, timeline }) + '\\n');
});
`;

interface Measured {
  rssKiB: number;
  wallMs: number;
  cpuMs: number;
  profile?: { max: Record<string, number>; peak: Record<string, number>; spaces: [string, number, number][]; timeline: number[][] };
  gcLines: number;
}

const MiB = (b: number) => (b / 1048576).toFixed(1);

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'p2m-memw4-'));
  const cleanup: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  try {
    const bundle = values.bundle ? path.resolve(values.bundle) : path.join(work, 'pop2mqtt.cjs');
    if (!values.bundle && !values.binary) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-bundle.mjs'), '--outfile', bundle], { stdio: 'inherit' });
    if (values.binary) dropPageCache(path.resolve(values.binary));
    const sampler = path.join(work, 'mem-sampler.cjs');
    await writeFile(sampler, SAMPLER);

    log('starting Dovecot and Mosquitto');
    const [dovecot, mosquitto] = await Promise.all([startDovecot({ users: [{ user: USER, pass: PASS }] }), startMosquitto()]);
    cleanup.push(() => dovecot.stop(), () => mosquitto.stop());
    const sub = await subscribe(mosquitto.url, ['pop2mqtt/alerts/#', 'pop2mqtt/snapshots/#']);
    cleanup.push(() => sub.close());

    let bytes = 0;
    let snaps = 0;
    let alarms = 0;
    for (const m of corpus(SEED, MESSAGES)) {
      await dovecot.deliver(USER, m.raw);
      bytes += m.raw.length;
      if (m.kind === 'alarm-snapshot') snaps++;
      if (m.kind === 'alarm' || m.kind === 'alarm-snapshot') alarms++;
    }
    log(`delivered ${MESSAGES} messages, ${(bytes / 1e6).toFixed(1)} MB: ${alarms} alarms, ${snaps} with a JPEG snapshot`);

    const agent = new AgentHarness({ bundle, dir: work, mqttUrl: mosquitto.url, pop3Port: dovecot.tlsPort, caFile: dovecot.caFile, user: USER, pass: PASS });
    const nodeArgs = [...(values['node-arg'] as string[])];
    if (values.profile) nodeArgs.push('--require', sampler);
    if (values['trace-gc']) nodeArgs.push('--trace-gc');
    const extraEnv = Object.fromEntries((values.env as string[]).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

    const once = async (config: string): Promise<Measured> => {
      const [cmd, pre] = values.binary ? [path.resolve(values.binary), []] : [process.execPath, [...nodeArgs, bundle]];
      const r = await timedRun(cmd, [...pre, 'once', '--config', config], { env: { ...agent.env, ...extraEnv }, cwd: work, timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`pop2mqtt once exited with ${r.code ?? r.signal}\n${r.stderr.slice(-3000)}`);
      const line = r.stderr.split('\n').find((l) => l.startsWith('MEMPROFILE '));
      const gcLines = (r.stdout + r.stderr).split('\n').filter((l) => /\b(Scavenge|Mark-Compact|Mark-sweep)\b/.test(l));
      if (values['trace-gc']) process.stderr.write(gcLines.slice(-40).join('\n') + '\n');
      if (values['show-output']) process.stderr.write(`--- output of once --config ${path.basename(config)}\n${r.stdout}${r.stderr.split('\n').filter((l) => !l.startsWith('MEMPROFILE ')).join('\n')}\n`);
      return { rssKiB: r.maxRssKiB, wallMs: r.wallMs, cpuMs: r.cpuMs, profile: line ? JSON.parse(line.slice('MEMPROFILE '.length)) : undefined, gcLines: gcLines.length };
    };

    const rows: Array<{ run: number; what: string; m: Measured }> = [];
    for (let run = 1; run <= RUNS; run++) {
      const w1cfg = await agent.writeConfig(`w1-${run}`, { stateDir: `state-w1-${run}`, rules: headerRules(), logLevel: 'warn' });
      sub.clear();
      log(`run ${run}: W1 first poll, header-only rules`);
      const w1 = await once(w1cfg);
      const gotAlerts = await sub.waitForCount(alarms, 30_000, (m) => m.topic.startsWith('pop2mqtt/alerts/'));
      if (gotAlerts.length !== alarms) throw new Error(`W1: ${gotAlerts.length} alerts, expected ${alarms}`);
      rows.push({ run, what: 'W1 first poll, header rules', m: w1 });

      log(`run ${run}: idle one-shot poll`);
      rows.push({ run, what: 'idle one-shot poll', m: await once(w1cfg) });

      const w4cfg = await agent.writeConfig(`w4-${run}`, { stateDir: `state-w4-${run}`, rules: snapshotRules(), logLevel: 'warn' });
      sub.clear();
      log(`run ${run}: W4 first poll, body rule`);
      const w4 = await once(w4cfg);
      const images = await sub.waitForCount(snaps, 30_000, (m) => m.topic.startsWith('pop2mqtt/snapshots/') && m.payload[0] === 0xff && m.payload[1] === 0xd8);
      if (images.length !== snaps) throw new Error(`W4: ${images.length} JPEG snapshots published, expected ${snaps}`);
      rows.push({ run, what: `W4 first poll, body rule (${snaps} RETR)`, m: w4 });
    }

    const out: string[] = [];
    out.push(`pop2mqtt peak RSS — ${MESSAGES} messages (${(bytes / 1e6).toFixed(1)} MB), seed ${SEED}, ${values.binary ? `binary ${path.basename(values.binary)}` : `Node ${process.version}`}${nodeArgs.length ? `, node args: ${nodeArgs.filter((a) => a !== sampler).join(' ')}` : ''}${Object.keys(extraEnv).length ? `, env: ${(values.env as string[]).join(' ')}` : ''}`);
    out.push('');
    out.push('| run | workload | peak RSS (MiB) | Δ idle (MiB) | wall (ms) | CPU user+sys (ms) |' + (values.profile ? ' max heapTotal | max heapUsed | max external | max arrayBuffers | at RSS peak: t ms, heapTotal/heapUsed/external/arrayBuffers |' : ''));
    out.push('|---|---|---:|---:|---:|---:|' + (values.profile ? '---:|---:|---:|---:|---|' : ''));
    for (const r of rows) {
      const idle = rows.find((x) => x.run === r.run && x.what.startsWith('idle'))!.m.rssKiB;
      let line = `| ${r.run} | ${r.what} | ${(r.m.rssKiB / 1024).toFixed(1)} | ${((r.m.rssKiB - idle) / 1024).toFixed(1)} | ${r.m.wallMs} | ${r.m.cpuMs} |`;
      const p = r.m.profile;
      if (p) line += ` ${MiB(p.max.heapTotal!)} | ${MiB(p.max.heapUsed!)} | ${MiB(p.max.external!)} | ${MiB(p.max.arrayBuffers!)} | ${p.peak.t} ms: ${MiB(p.peak.heapTotal!)}/${MiB(p.peak.heapUsed!)}/${MiB(p.peak.external!)}/${MiB(p.peak.arrayBuffers!)} |`;
      out.push(line);
    }
    if (values.profile) {
      out.push('');
      for (const r of rows) {
        const p = r.m.profile;
        if (!p) continue;
        out.push(`${r.what} (run ${r.run}), V8 heap spaces at the RSS peak (size/used MiB): ${p.spaces.map(([n, s, u]) => `${n.replace(/_space$/, '')} ${MiB(s)}/${MiB(u)}`).join(', ')}`);
        out.push(`  timeline (t ms: rss/heapTotal/heapUsed/external/arrayBuffers MiB): ${p.timeline.filter((_, i) => i % 2 === 0).map(([t, ...v]) => `${t}: ${v.map((x) => MiB(x!)).join('/')}`).join('; ')}`);
      }
    }
    process.stdout.write(out.join('\n') + '\n');
    if (values.json) {
      const json = rows.map((r) => ({ run: r.run, workload: r.what, rssKiB: r.m.rssKiB, idleKiB: rows.find((x) => x.run === r.run && x.what.startsWith('idle'))!.m.rssKiB, cpuMs: r.m.cpuMs }));
      process.stdout.write(`MEMW4-JSON ${JSON.stringify({ messages: MESSAGES, snapshots: snaps, rows: json })}\n`);
    }
  } finally {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
