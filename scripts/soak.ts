// Soak test: thousands of real polls (Dovecot + Mosquitto) with mail arriving, sampling the agent process's RSS and open fds to catch leaks.
//
// The parent starts the lab, delivers mail and counts alerts. The agent runs in a forked child: this same file,
// bundled by scripts/build-bundle.mjs like the shipped CLI and run by plain node (no tsx), in a tight pollNow()
// loop, reporting memory and fd samples; so the numbers are those of the agent as shipped.
// Usage: node --import tsx scripts/soak.ts [--polls 2000]   (or `npm run soak`)
// Env: SOAK_POLLS (2000), SOAK_WARMUP (200, polls before the RSS baseline), SOAK_MAIL_EVERY (4), SOAK_TLS=none,
// SOAK_SAMPLE_EVERY / SOAK_PRINT_EVERY, SOAK_SNAPSHOT_AT=1000,3000 (heap snapshots in /tmp, for hunting a leak).
import { CAMERA_MOTION_RULE } from '../test/support/rules.js';
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface Sample {
  poll: number;
  rss: number;
  heap: number;
  heapTotal: number;
  external: number;
  fds: number;
  ms: number;
}
type ChildMsg = { type: 'polled'; poll: number } | { type: 'sample'; sample: Sample } | { type: 'done'; failed: number; seconds: number };

const MB = 1024 * 1024;
const WARMUP = Number(process.env.SOAK_WARMUP ?? 200);
const PRINT_EVERY = Number(process.env.SOAK_PRINT_EVERY ?? 250);
const SAMPLE_EVERY = Number(process.env.SOAK_SAMPLE_EVERY ?? 100);

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function agentMain(cfgFile: string, polls: number): Promise<void> {
  const { loadConfig } = await import('../src/config/index.js');
  const { Agent } = await import('../src/agent.js');
  const { createLogger } = await import('../src/log.js');
  const send = (m: ChildMsg) => process.send!(m);
  const loaded = await loadConfig(cfgFile);
  const agent = new Agent(loaded, { logger: createLogger({ level: 'warn' }) });
  await agent.start({ schedule: false });
  const gc = (globalThis as { gc?: () => void }).gc;
  const t0 = Date.now();
  let failed = 0;
  const sample = (poll: number) => {
    gc?.();
    const m = process.memoryUsage();
    send({ type: 'sample', sample: { poll, rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external, fds: readdirSync('/proc/self/fd').length, ms: Date.now() - t0 } });
  };
  for (let i = 1; i <= polls; i++) {
    const [s] = await agent.pollNow('home');
    if (!s?.ok) failed++;
    send({ type: 'polled', poll: i });
    if (i === 1 || i % SAMPLE_EVERY === 0) sample(i);
    if (process.env.SOAK_SNAPSHOT_AT?.split(',').includes(String(i))) {
      gc?.();
      process.stderr.write(`heap snapshot: ${(await import('node:v8')).writeHeapSnapshot(`/tmp/soak-${i}.heapsnapshot`)}\n`);
    }
  }
  await agent.drainOutbox(10_000);
  sample(polls);
  await agent.stop();
  send({ type: 'done', failed, seconds: Math.round((Date.now() - t0) / 1000) });
  process.disconnect?.();
}

/** Test-harness modules, imported by a computed name so that the agent's bundle does not include them. */
async function harness() {
  const dir = '../test/support/';
  return {
    ...((await import(`${dir}lab.js`)) as typeof import('../test/support/lab.js')),
    ...((await import(`${dir}maildir.js`)) as typeof import('../test/support/maildir.js')),
    ...((await import(`${dir}mqtt-subscriber.js`)) as typeof import('../test/support/mqtt-subscriber.js')),
  };
}

/** Bundle this file for the child exactly as the CLI is bundled; returns the bundle's path. */
function bundleAgent(tmp: string): string {
  const self = path.resolve(process.argv[1]!);
  const root = path.dirname(path.dirname(self));
  const entry = path.join(tmp, 'soak-entry.ts');
  const out = path.join(tmp, 'soak-agent.cjs');
  writeFileSync(entry, `import ${JSON.stringify(self)};\n`);
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-bundle.mjs'), '--entry', entry, '--outfile', out], { stdio: 'inherit' });
  return out;
}

async function parentMain(polls: number): Promise<number> {
  const { startLab, USER, makeMail, subscribe } = await harness();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'p2m-soak-'));
  const agentBundle = bundleAgent(tmp);
  const lab = await startLab();
  let code = 1;
  try {
    const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/alerts/#']);
    // SOAK_TLS=none polls over plain TCP: comparing both runs tells TLS memory from the rest.
    const plain = process.env.SOAK_TLS === 'none';
    const cfg = await lab.writeConfig(`mqtt:
  url: ${lab.mosquitto.url}
state_dir: ./soak-state
mailboxes:
  - id: home
    host: 127.0.0.1
    port: ${plain ? lab.dovecot.port : lab.dovecot.tlsPort}
${plain ? '    tls: none\n    allow_insecure_auth: true\n' : `    tls: implicit\n    ca_file: ${lab.dovecot.caFile}\n`}    username: ${USER}
    password: \${POP3_PASSWORD}
    keep: false
    existing: process
rules:
${CAMERA_MOTION_RULE}`);
    // SOAK_MAIL_EVERY: an alarm every n polls (default 4; 0 = no mail, every poll is a STAT short-circuit).
    const mailEvery = Number(process.env.SOAK_MAIL_EVERY ?? 4);
    let delivered = 0;
    let news = 0;
    const samples: Sample[] = [];
    const child = fork(agentBundle, ['--agent', cfg, '--polls', String(polls)], {
      execArgv: ['--expose-gc'], env: { ...lab.env, SOAK_ROLE: 'agent' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const done = await new Promise<{ failed: number; seconds: number }>((resolve, reject) => {
      let pending = Promise.resolve();
      child.on('message', (m: ChildMsg) => {
        if (m.type === 'polled') {
          // Mail keeps arriving: an alarm every 4th poll, a newsletter (never alerted, never deleted) every 50th.
          if (mailEvery > 0 && m.poll % mailEvery === 0) {
            delivered++;
            const n = delivered;
            pending = pending.then(() => lab.dovecot.deliver(USER, makeMail({ from: 'NVR <nvr@nvr.local>', subject: `ALARM: Motion soak-${n} Camera ${1 + (n % 4)}` })).then(() => {}));
          }
          if (mailEvery > 0 && m.poll % 50 === 0) {
            news++;
            pending = pending.then(() => lab.dovecot.deliver(USER, makeMail({ from: 'News <news@shop.example>', subject: `Deals ${m.poll}` })).then(() => {}));
          }
          if (m.poll % 500 === 0) process.stdout.write(`  ${m.poll} polls\n`);
        } else if (m.type === 'sample') samples.push(m.sample);
        else if (m.type === 'done') resolve(m);
      });
      child.on('exit', (c) => reject(new Error(`agent process exited with ${c} before finishing`)));
    });
    await new Promise((r) => child.once('exit', r));
    // The last alarm may have been delivered after the last poll; alerts for the rest must all be there.
    const expected = Math.max(0, delivered - 1);
    await sub.waitForCount(expected, 15_000).catch(() => undefined);
    const alerts = new Set(sub.messages.map((m) => (m.json as { subject?: string } | undefined)?.subject)).size;
    await sub.close();

    const base = samples.find((s) => s.poll >= WARMUP) ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    const warm = samples.filter((s) => s.poll >= base.poll);
    const fds = warm.map((s) => s.fds);
    const growth = (last.rss - base.rss) / MB;
    const fdSpread = Math.max(...fds) - Math.min(...fds);
    process.stdout.write('\n   poll   rss MB  heap MB  heap total  ext MB  fds  seconds\n');
    for (const s of samples) {
      if (s.poll === 1 || s.poll % PRINT_EVERY === 0 || s === last) {
        process.stdout.write(`  ${String(s.poll).padStart(5)}  ${(s.rss / MB).toFixed(1).padStart(7)}  ${(s.heap / MB).toFixed(1).padStart(7)}  ${(s.heapTotal / MB).toFixed(1).padStart(8)}  ${(s.external / MB).toFixed(1).padStart(7)}  ${String(s.fds).padStart(3)}  ${String(Math.round(s.ms / 1000)).padStart(7)}\n`);
      }
    }
    const rssOk = growth < 5;
    const fdOk = fdSpread <= 2;
    const alertsOk = alerts >= expected;
    process.stdout.write(`\nsoak: ${polls} polls in ${done.seconds} s (${(polls / Math.max(1, done.seconds)).toFixed(1)}/s), failed polls ${done.failed}\n`);
    process.stdout.write(`soak: RSS ${(base.rss / MB).toFixed(1)} MB after ${base.poll} polls -> ${(last.rss / MB).toFixed(1)} MB at the end: growth ${growth.toFixed(2)} MB (goal < 5) ${rssOk ? 'OK' : 'FAIL'}\n`);
    const mid = samples.find((s) => s.poll >= polls / 2) ?? base;
    process.stdout.write(`soak: RSS over the second half (${mid.poll} -> ${last.poll} polls): ${((last.rss - mid.rss) / MB).toFixed(2)} MB\n`);
    process.stdout.write(`soak: heap used after GC ${(base.heap / MB).toFixed(1)} -> ${(last.heap / MB).toFixed(1)} MB\n`);
    process.stdout.write(`soak: open fds ${Math.min(...fds)}..${Math.max(...fds)} after warm-up (goal flat) ${fdOk ? 'OK' : 'FAIL'}\n`);
    process.stdout.write(`soak: ${delivered} alarms delivered, ${alerts} distinct alerts received (>= ${expected} expected) ${alertsOk ? 'OK' : 'FAIL'}; ${news} newsletters left alone\n`);
    code = rssOk && fdOk && alertsOk && done.failed === 0 ? 0 : 1;
  } finally {
    await lab.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return code;
}

const polls = Number(argValue('--polls') ?? process.env.SOAK_POLLS ?? 2000);
if (process.env.SOAK_ROLE === 'agent') {
  agentMain(argValue('--agent')!, polls).catch((err) => {
    process.stderr.write(`soak agent: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else {
  parentMain(polls).then(
    (c) => process.exit(c),
    (err) => {
      process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
