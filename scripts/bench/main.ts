// `npm run bench`: pop2mqtt vs fetchmail on the same real Dovecot and corpus — bytes (Dovecot logout lines and a counting relay), time, RSS and fds over workloads W1–W5.
// Usage: node --import tsx scripts/bench/main.ts [--messages N | --small] [--seed S] [--soak-polls N] [--out DIR] [--w6-only] [--w6-mailboxes N] [--w1-runs N] [--w4-messages N]
// --w4-messages: the one-shot W4 memory rows (scripts/bench/memory-w4.ts, 2 runs) with N messages; 300 (issue 14's row), 100 with --small, 0 leaves them out.
// W6 (one gateway, many mailboxes; scripts/bench/w6.ts) runs 100 mailboxes and 1,000 alarms, 20 and 200 with --small.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDovecot, type DovecotServer, type LogoutStats } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { startRelay, type Relay } from '../../test/support/relay.js';
import { subscribe, type Subscriber } from '../../test/support/mqtt-subscriber.js';
import { corpus, corpusMessage, type MailKind } from './corpus.js';
import { measureRetr, measureTlsFloor, measureTopZero, type ServerLogin } from './reference.js';
import { fetchmailDaemon, fetchmailOnce, makeFetchmailHome, type FetchmailHome } from './fetchmail.js';
import { sampleProc, stopChild, timedRun, type ProcSample, type TimedRun } from './proc.js';
import { checkTargets, markdownTable, type Row } from './report.js';
import { AgentHarness, headerRules, snapshotRules } from './agent.js';
import { disableRawlog, enableRawlog, RAWLOG_CONF, readSessions, roundTripsOver, type RawlogSession } from './rawlog.js';
import { startDelayProxy } from './delay-proxy.js';
import { runW6 } from './w6.js';
import { dropPageCache } from '../binaries/page-cache.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values } = parseArgs({
  options: {
    messages: { type: 'string' },
    small: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    'soak-polls': { type: 'string' },
    out: { type: 'string', default: path.join(ROOT, 'bench-results') },
    'skip-fetchmail': { type: 'boolean', default: false },
    'w6-only': { type: 'boolean', default: false },
    'w6-mailboxes': { type: 'string' },
    'w1-runs': { type: 'string' },
    'w4-messages': { type: 'string' },
  },
});
const MESSAGES = Number(values.messages ?? (values.small ? 100 : 1000));
const SEED = Number(values.seed);
/** W1's first poll is timed this many times (fresh state each); the table shows the median. */
const W1_TIMED_RUNS = Number(values['w1-runs'] ?? 5);
const SOAK_POLLS = Number(values['soak-polls'] ?? (values.small ? 20 : 120));
const NEW_MAILS = 5;
const W4_MESSAGES = Number(values['w4-messages'] ?? (values.small ? 100 : 300));
if (!Number.isInteger(W4_MESSAGES) || (W4_MESSAGES !== 0 && W4_MESSAGES < 10)) throw new Error('--w4-messages must be 0 or an integer >= 10');
const WITH_FETCHMAIL = !values['skip-fetchmail'];
const W6_MAILBOXES = Number(values['w6-mailboxes'] ?? (values.small ? 20 : 100));
const W6_ALARMS = W6_MAILBOXES * 10;
if (!Number.isInteger(W6_MAILBOXES) || W6_MAILBOXES < 2) throw new Error('--w6-mailboxes must be an integer >= 2');
if (!Number.isInteger(W1_TIMED_RUNS) || W1_TIMED_RUNS < 1) throw new Error('--w1-runs must be an integer >= 1');
if (!Number.isInteger(MESSAGES) || MESSAGES < 10) throw new Error('--messages must be an integer >= 10');
if (!Number.isInteger(SOAK_POLLS) || SOAK_POLLS < 12) throw new Error('--soak-polls must be an integer >= 12');

const USER = 'bench';
/**
 * Dovecot's default login service forks one pop3-login process per connection (service_count = 1), and each process
 * has its own TLS session-ticket key, so no client can ever resume a TLS session there. The bench runs the login
 * service in Dovecot's "high-performance" mode (one long-lived process), as providers do, so that resumption is
 * possible at all; both clients see the same server.
 */
const DOVECOT_LOGIN_CONF = 'service pop3-login {\n  service_count = 0\n  process_min_avail = 1\n}\n';
const PASS = 'bench-Pop3-pw-8472';
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** What one measured POP3 run cost, from both counters. */
interface Cost {
  /** Dovecot logout line(s) of the run (post-login plaintext). */
  sessions: LogoutStats[];
  out: number;
  in: number;
  top: number;
  retr: number;
  retrBytes: number;
  /** Relay counters: wire bytes incl. TLS and login. */
  wireFromServer: number;
  wireToServer: number;
  connections: number;
}

function costOf(sessions: LogoutStats[], relay: Relay, fromConn = 0, toConn?: number): Cost {
  const conns = relay.connectionStats.slice(fromConn, toConn);
  return {
    sessions,
    out: sum(sessions.map((s) => s.out)),
    in: sum(sessions.map((s) => s.in)),
    top: sum(sessions.map((s) => s.top)),
    retr: sum(sessions.map((s) => s.retr)),
    retrBytes: sum(sessions.map((s) => s.retrBytes)),
    wireFromServer: sum(conns.map((c) => c.fromServer)),
    wireToServer: sum(conns.map((c) => c.toServer)),
    connections: conns.length,
  };
}
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Runs fn, then returns the Dovecot logout lines it caused (waiting for `expect` of them). */
async function sessionsOf<T>(dovecot: DovecotServer, expect: number, fn: () => Promise<T>): Promise<{ value: T; sessions: LogoutStats[] }> {
  const before = (await dovecot.settled()).length;
  const value = await fn();
  const all = await dovecot.logoutLines({ atLeast: before + expect, timeoutMs: 10_000 });
  return { value, sessions: all.slice(before) };
}

async function main(): Promise<void> {
  const started = new Date();
  const work = await mkdtemp(path.join(os.tmpdir(), 'p2m-bench-'));
  const cleanup: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  try {
    // --- build the agent as shipped (esbuild bundle), into the bench's own dir ---
    const bundle = path.join(work, 'pop2mqtt.cjs');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-bundle.mjs'), '--outfile', bundle], { stdio: 'inherit' });
    const git = gitInfo();
    if (values['w6-only']) {
      const w6 = await runW6({ bundle, dir: work, mailboxes: W6_MAILBOXES, alarms: W6_ALARMS, log });
      const targets = checkTargets(w6.rows);
      await mkdir(values.out!, { recursive: true });
      const file = path.join(values.out!, `${started.toISOString().replace(/[:.]/g, '-')}-w6.json`);
      await writeFile(file, JSON.stringify({ version: 1, startedAt: started.toISOString(), git, node: process.version, workloads: { w6: w6.result }, rows: w6.rows, targets, profile: w6.profile }, null, 2) + '\n');
      process.stdout.write(`\n## pop2mqtt bench, W6 only — ${started.toISOString()} — ${git.commit.slice(0, 12)}${git.dirty ? ' (dirty tree)' : ''}, Node ${process.version}\n\n${markdownTable(w6.rows)}\n\n${w6.profile.map((p) => `- ${p}`).join('\n')}\n\n`);
      const missed = targets.filter((t) => !t.met);
      process.stdout.write(missed.length ? `Targets missed: ${missed.map((t) => `${t.metric} (${t.target})`).join('; ')}\n` : 'All targets met.\n');
      process.stdout.write(`JSON: ${path.relative(process.cwd(), file)}\n`);
      return;
    }

    // --- servers ---
    log('starting Dovecot and Mosquitto');
    const [dovecot, mosquitto] = await Promise.all([startDovecot({ users: [{ user: USER, pass: PASS }], extraConf: DOVECOT_LOGIN_CONF + RAWLOG_CONF }), startMosquitto()]);
    cleanup.push(() => dovecot.stop(), () => mosquitto.stop());
    const relay = await startRelay('127.0.0.1', dovecot.tlsPort);
    cleanup.push(() => relay.close());
    const sub = await subscribe(mosquitto.url, ['pop2mqtt/alerts/#', 'pop2mqtt/snapshots/#']);
    cleanup.push(() => sub.close());
    const login: ServerLogin = { host: '127.0.0.1', port: dovecot.port, user: USER, pass: PASS };

    // --- corpus ---
    log(`delivering ${MESSAGES} messages (seed ${SEED})`);
    const kinds: MailKind[] = [];
    const expectedHeaderBytes: number[] = [];
    let corpusBytes = 0;
    let corpusHeaderBytes = 0;
    const t0 = Date.now();
    for (const m of corpus(SEED, MESSAGES)) {
      await dovecot.deliver(USER, m.raw);
      kinds.push(m.kind);
      expectedHeaderBytes.push(m.headerBytes);
      corpusBytes += m.raw.length;
      corpusHeaderBytes += m.headerBytes;
    }
    log(`delivered ${(corpusBytes / 1e6).toFixed(1)} MB in ${Date.now() - t0} ms`);
    const kindCount = (ks: MailKind[]) => Object.fromEntries(['newsletter', 'ordinary', 'attachment', 'alarm-snapshot', 'alarm'].map((k) => [k, ks.filter((x) => x === k).length]));

    // --- reference: TOP n 0 bound and RETR of the snapshot alarms, outside the measured runs ---
    log('reference session: TOP n 0 of every message (also warms Dovecot\'s index)');
    const linesBeforeRef = (await dovecot.settled()).length;
    const ref = await measureTopZero(login);
    if (ref.messages !== MESSAGES || ref.octets !== corpusBytes) throw new Error(`server has ${ref.messages} messages / ${ref.octets} octets, corpus ${MESSAGES} / ${corpusBytes}`);
    for (let i = 0; i < MESSAGES; i++) {
      const got = ref.top0ByMsg.get(i + 1)!.headerBytes;
      if (got !== expectedHeaderBytes[i]) throw new Error(`TOP ${i + 1} 0 returned ${got} header bytes, corpus says ${expectedHeaderBytes[i]}: message order differs`);
    }
    const snapMsgs = kinds.flatMap((k, i) => (k === 'alarm-snapshot' ? [i + 1] : []));
    const alarmCount = kinds.filter((k) => k === 'alarm' || k === 'alarm-snapshot').length;
    const retrRef = await measureRetr(login, snapMsgs);
    // Dovecot logs a session a moment after QUIT: wait for both reference sessions, so no run counts them as its own.
    await dovecot.logoutLines({ atLeast: linesBeforeRef + 2, timeoutMs: 10_000 });
    log(`TOP-0 bound ${ref.top0Bytes} B for ${MESSAGES} messages; RETR of ${snapMsgs.length} snapshot alarms ${retrRef.bytes} B`);

    const agent = new AgentHarness({ bundle, dir: work, mqttUrl: mosquitto.url, pop3Port: relay.port, caFile: dovecot.caFile, user: USER, pass: PASS });
    const fmSetup = { host: '127.0.0.1', port: relay.port, user: USER, pass: PASS, caFile: dovecot.caFile };
    const fmHomes: FetchmailHome[] = [];
    const newFmHome = async () => {
      const h = await makeFetchmailHome(fmSetup);
      fmHomes.push(h);
      cleanup.push(() => h.remove());
      return h;
    };
    const results: Record<string, unknown> = {};
    const rows: Row[] = [];

    // ================= W1: first poll, header-only rules, existing: process =================
    // Bytes: through the counting relay, with Dovecot's rawlog on (which commands cost what).
    log('W1 pop2mqtt: first poll (once), header-only rules — bytes (relay + rawlog)');
    const w1cfg = await agent.writeConfig('w1', { stateDir: 'state-main', rules: headerRules() });
    sub.clear();
    relay.resetCounters();
    const w1 = await withRawlog(dovecot, () => sessionsOf(dovecot, 1, () => agent.once(w1cfg)));
    await sub.waitForCount(alarmCount, 30_000, (m) => m.topic.startsWith('pop2mqtt/alerts/'));
    const w1Cost = costOf(w1.value.sessions, relay);
    assertCost('W1 pop2mqtt', w1Cost, { top: MESSAGES, retr: 0 });
    const w1Raw = w1.rawlog[0];
    // Time and RSS: a second first poll (fresh state) straight to Dovecot's POP3S port, nothing in between.
    // Wall time swings with the machine's load, so it is the median of W1_TIMED_RUNS runs (each listed in the notes).
    log(`W1 pop2mqtt: first poll again from fresh state, direct to Dovecot, ${W1_TIMED_RUNS} times — time (median) and peak RSS`);
    const w1Runs: Array<Awaited<ReturnType<typeof timeFirstPoll>>> = [];
    for (let i = 0; i < W1_TIMED_RUNS; i++) w1Runs.push(await timeFirstPoll(agent, sub, dovecot.tlsPort, `w1-time-${i}`, alarmCount));
    const medianOf = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const w1t = [...w1Runs].sort((x, y) => x.lastAlertMs - y.lastAlertMs)[Math.floor(w1Runs.length / 2)]!;
    const w1PollMedian = medianOf(w1Runs.map((r) => r.poll.durationMs ?? Number.NaN));
    // The same over a link with a 20 ms round trip: how the time depends on round trips.
    log('W1 pop2mqtt: first poll from fresh state over a 20 ms round-trip link');
    const slow = await startDelayProxy('127.0.0.1', dovecot.tlsPort, 10);
    cleanup.push(() => slow.close());
    const w1s = await withRawlog(dovecot, () => timeFirstPoll(agent, sub, slow.port, 'w1-rtt20', alarmCount));
    await slow.close();

    let fmW1: { run: TimedRun; cost: Cost } | undefined;
    let fmW1t: TimedRun | undefined;
    if (WITH_FETCHMAIL) {
      log('W1 fetchmail: first poll (downloads every message: keep mode has no header-only mode) — bytes');
      const home = await newFmHome();
      relay.resetCounters();
      const r = await sessionsOf(dovecot, 1, () => fetchmailOnce(home, 600_000));
      fmW1 = { run: r.value, cost: costOf(r.sessions, relay) };
      log('W1 fetchmail: first poll again from a fresh idfile, direct to Dovecot — time and peak RSS');
      const direct = await makeFetchmailHome({ ...fmSetup, port: dovecot.tlsPort });
      cleanup.push(() => direct.remove());
      fmW1t = await fetchmailOnce(direct, 600_000);
    }
    results.w1 = {
      pop2mqtt: {
        ...w1Cost, sessions: w1Cost.sessions.map((s) => s.raw), commands: w1Raw && shapeTable(w1Raw), roundTrips: w1Raw?.roundTrips,
        timing: { lastAlertMs: w1t.lastAlertMs, wallMs: w1t.run.wallMs, maxRssKiB: w1t.run.maxRssKiB, poll: w1t.poll },
        rtt20: { lastAlertMs: w1s.value.lastAlertMs, wallMs: w1s.value.run.wallMs, poll: w1s.value.poll, roundTrips: w1s.rawlog[0] && roundTripsOver(w1s.rawlog[0], 10) },
      },
      fetchmail: fmW1 && { ...fmW1.cost, sessions: fmW1.cost.sessions.map((s) => s.raw), wallMsViaRelay: fmW1.run.wallMs, timing: { wallMs: fmW1t!.wallMs, maxRssKiB: fmW1t!.maxRssKiB } },
    };
    const W1 = `W1 first poll (${MESSAGES} msgs, ${(corpusBytes / 1e6).toFixed(0)} MB, ${alarmCount} alerts)`;
    const w1sRt = w1s.rawlog[0] ? roundTripsOver(w1s.rawlog[0], 10) : null;
    rows.push(
      { workload: W1, metric: 'bytes from server after login (Dovecot out)', unit: 'B', pop2mqtt: w1Cost.out, fetchmail: fmW1?.cost.out ?? null },
      { workload: W1, metric: 'ratio to TOP-0 bound (Dovecot out ÷ bound)', unit: 'x', pop2mqtt: w1Cost.out / ref.top0Bytes, fetchmail: fmW1 ? fmW1.cost.out / ref.top0Bytes : null, target: { max: 1.01, text: '≤ 1.01 × bound' } },
      { workload: W1, metric: 'wire bytes from server (TLS, relay)', unit: 'B', pop2mqtt: w1Cost.wireFromServer, fetchmail: fmW1?.cost.wireFromServer ?? null },
      { workload: W1, metric: 'wire bytes to server (TLS, relay)', unit: 'B', pop2mqtt: w1Cost.wireToServer, fetchmail: fmW1?.cost.wireToServer ?? null },
      { workload: W1, metric: 'TOP / RETR commands', unit: 'n', pop2mqtt: w1Cost.top + w1Cost.retr, fetchmail: fmW1 ? fmW1.cost.top + fmW1.cost.retr : null },
      { workload: W1, metric: `wall time: process start → last alert received (pop2mqtt, median of ${W1_TIMED_RUNS} runs); whole run (fetchmail)`, unit: 'ms', pop2mqtt: w1t.lastAlertMs, fetchmail: fmW1t?.wallMs ?? null, target: { max: 600, text: '≤ 0.6 s' } },
      { workload: W1, metric: `poll duration inside the agent (log duration_ms, median of ${W1_TIMED_RUNS} runs)`, unit: 'ms', pop2mqtt: w1PollMedian, fetchmail: null, target: { max: 250, text: '≤ 250 ms' } },
      { workload: W1, metric: `wait for the last outbox writes and PUBACKs after QUIT (log ack_wait_ms, median of ${W1_TIMED_RUNS} runs)`, unit: 'ms', pop2mqtt: medianOf(w1Runs.map((r) => r.poll.ackWaitMs ?? 0)), fetchmail: null },
      { workload: W1, metric: `wall time over a 20 ms round-trip link (${w1sRt ?? '?'} round trips after login)`, unit: 'ms', pop2mqtt: w1s.value.lastAlertMs, fetchmail: null },
      { workload: W1, metric: 'peak RSS', unit: 'KiB', pop2mqtt: w1t.run.maxRssKiB, fetchmail: fmW1t?.maxRssKiB ?? null },
    );

    // ================= W2: idle poll =================
    log('W2 pop2mqtt: idle poll (once, full TLS handshake)');
    relay.resetCounters();
    const w2r = await withRawlog(dovecot, () => sessionsOf(dovecot, 1, () => agent.once(w1cfg)));
    const w2 = w2r.value;
    const w2Cost = costOf(w2.sessions, relay);
    assertCost('W2 pop2mqtt', w2Cost, { top: 0, retr: 0 });
    let fmW2: { run: TimedRun; cost: Cost; rawlog?: RawlogSession } | undefined;
    if (WITH_FETCHMAIL) {
      log('W2 fetchmail: idle poll');
      relay.resetCounters();
      const r = await withRawlog(dovecot, () => sessionsOf(dovecot, 1, () => fetchmailOnce(fmHomes[0]!, 120_000)));
      fmW2 = { run: r.value.value, cost: costOf(r.value.sessions, relay), rawlog: r.rawlog[0] };
    }
    log('W2 pop2mqtt: daemon polling every second, TLS session resumed after the first poll');
    const w2d = await daemonPolls(dovecot, relay, () => agent.daemon(w1cfg), 4);
    let fmW2d: Awaited<ReturnType<typeof daemonPolls>> | undefined;
    if (WITH_FETCHMAIL) {
      log('W2 fetchmail: daemon polling every second');
      fmW2d = await daemonPolls(dovecot, relay, () => fetchmailDaemon(fmHomes[0]!, 1), 4);
    }
    log('W2 reference: TLS floor (handshake + greeting + QUIT, nothing else), TLS 1.3 and 1.2, full and resumed');
    const caPem = await readFile(dovecot.caFile);
    const floor13 = await measureTlsFloor(relay, caPem, 'TLSv1.3');
    const floor12 = await measureTlsFloor(relay, caPem, 'TLSv1.2');
    const floorOwn = await measureTlsFloor(relay, caPem, 'pop2mqtt');
    const resumedWire = (d: typeof w2d) => Math.max(...d.perPoll.slice(1).map((c) => c.wireFromServer + c.wireToServer));
    results.w2 = {
      pop2mqtt: { once: { ...w2Cost, sessions: w2Cost.sessions.map((s) => s.raw), commands: w2r.rawlog[0]?.exchanges.map((e) => e.command), wallMs: w2.value.wallMs, maxRssKiB: w2.value.maxRssKiB }, daemon: w2d.perPoll.map(simpleCost) },
      fetchmail: fmW2 && { once: { ...fmW2.cost, sessions: fmW2.cost.sessions.map((s) => s.raw), commands: fmW2.rawlog?.exchanges.map((e) => e.command), wallMs: fmW2.run.wallMs, maxRssKiB: fmW2.run.maxRssKiB }, daemon: fmW2d!.perPoll.map(simpleCost) },
      tlsFloor: { 'TLSv1.3': floor13, 'TLSv1.2': floor12, pop2mqtt: floorOwn },
    };
    const W2 = 'W2 idle poll (nothing new)';
    rows.push(
      { workload: W2, metric: 'bytes after login, both directions (Dovecot in + out; includes the "+OK Logged in." reply)', unit: 'B', pop2mqtt: w2Cost.in + w2Cost.out, fetchmail: fmW2 ? fmW2.cost.in + fmW2.cost.out : null },
      { workload: W2, metric: 'the poll\'s own commands after login: command + reply bytes (rawlog)', unit: 'B', pop2mqtt: ownBytes(w2r.rawlog[0]), fetchmail: ownBytes(fmW2?.rawlog), target: { max: 100, text: '≤ 100 B' } },
      { workload: W2, metric: 'TOP / RETR commands', unit: 'n', pop2mqtt: w2Cost.top + w2Cost.retr, fetchmail: fmW2 ? fmW2.cost.top + fmW2.cost.retr : null },
      { workload: W2, metric: 'wire bytes, one-shot poll (full TLS handshake, both directions)', unit: 'B', pop2mqtt: w2Cost.wireFromServer + w2Cost.wireToServer, fetchmail: fmW2 ? fmW2.cost.wireFromServer + fmW2.cost.wireToServer : null },
      { workload: W2, metric: 'wire bytes, daemon 1st poll (both directions)', unit: 'B', pop2mqtt: wireOf(w2d.perPoll[0]!), fetchmail: fmW2d ? wireOf(fmW2d.perPoll[0]!) : null },
      { workload: W2, metric: 'wire bytes, daemon later polls (max; pop2mqtt resumes TLS)', unit: 'B', pop2mqtt: resumedWire(w2d), fetchmail: fmW2d ? resumedWire(fmW2d) : null, target: { max: 1536, text: '≤ 1.5 KiB' } },
      { workload: W2, metric: 'peak RSS, one-shot idle poll', unit: 'KiB', pop2mqtt: w2.value.maxRssKiB, fetchmail: fmW2?.run.maxRssKiB ?? null },
    );

    // ================= W3: five new mails arrive while the daemon runs =================
    log(`W3 pop2mqtt: daemon running, ${NEW_MAILS} new alarm mails delivered`);
    const newMails = Array.from({ length: NEW_MAILS }, (_, k) => corpusMessage(SEED, MESSAGES + k, k % 2 === 0 ? 'alarm-snapshot' : 'alarm'));
    const w3 = await newMailLatency(dovecot, relay, sub, () => agent.daemon(w1cfg), newMails.map((m) => m.raw));
    const linesBeforeRefNew = (await dovecot.settled()).length;
    const refNew = await measureTopZero(login, newMails.map((_, k) => MESSAGES + k + 1));
    const newSnapMsgs = newMails.flatMap((m, k) => (m.kind === 'alarm-snapshot' ? [MESSAGES + k + 1] : []));
    const retrNew = await measureRetr(login, newSnapMsgs);
    await dovecot.logoutLines({ atLeast: linesBeforeRefNew + 2, timeoutMs: 10_000 });
    assertCost('W3 pop2mqtt', w3.cost, { top: NEW_MAILS, retr: 0 });
    let fmW3: { run: TimedRun; cost: Cost } | undefined;
    if (WITH_FETCHMAIL) {
      log('W3 fetchmail: poll after the same five mails');
      relay.resetCounters();
      const r = await sessionsOf(dovecot, 1, () => fetchmailOnce(fmHomes[0]!, 120_000));
      fmW3 = { run: r.value, cost: costOf(r.sessions, relay) };
    }
    results.w3 = {
      pop2mqtt: { ...w3.cost, sessions: w3.cost.sessions.map((s) => s.raw), deliveryToLastAlertMs: w3.latencyMs, poll: w3.poll, top0BoundOfNew: refNew.top0Bytes },
      fetchmail: fmW3 && { ...fmW3.cost, sessions: fmW3.cost.sessions.map((s) => s.raw), wallMs: fmW3.run.wallMs, maxRssKiB: fmW3.run.maxRssKiB },
    };
    const W3 = `W3 ${NEW_MAILS} new mails (daemon, 1 s schedule)`;
    rows.push(
      { workload: W3, metric: `bytes from server after login (TOP-0 bound of the new mail: ${refNew.top0Bytes} B)`, unit: 'B', pop2mqtt: w3.cost.out, fetchmail: fmW3?.cost.out ?? null },
      { workload: W3, metric: 'wire bytes, both directions', unit: 'B', pop2mqtt: w3.cost.wireFromServer + w3.cost.wireToServer, fetchmail: fmW3 ? fmW3.cost.wireFromServer + fmW3.cost.wireToServer : null },
      { workload: W3, metric: 'delivery → last alert on MQTT (pop2mqtt); poll run time (fetchmail)', unit: 'ms', pop2mqtt: w3.latencyMs, fetchmail: fmW3?.run.wallMs ?? null, noRatio: true },
      { workload: W3, metric: 'poll duration inside the agent (log duration_ms)', unit: 'ms', pop2mqtt: w3.poll.durationMs ?? null, fetchmail: null },
    );

    // ================= W4: body rule on the snapshot alarms =================
    const allSnaps = [...snapMsgs, ...newSnapMsgs];
    const bound4 = ref.top0Bytes + refNew.top0Bytes;
    const retr4 = retrRef.bytes + retrNew.bytes;
    const total4 = MESSAGES + NEW_MAILS;
    log(`W4 pop2mqtt: first poll with a body rule on camera alarms (expects RETR of exactly ${allSnaps.length} messages)`);
    const w4cfg = await agent.writeConfig('w4', { stateDir: 'state-w4', rules: snapshotRules() });
    sub.clear();
    relay.resetCounters();
    const w4r = await withRawlog(dovecot, () => sessionsOf(dovecot, 1, () => agent.once(w4cfg)));
    const w4 = w4r.value;
    const w4Cost = costOf(w4.sessions, relay);
    assertCost('W4 pop2mqtt', w4Cost, { top: total4, retr: allSnaps.length });
    const retrieved = (w4r.rawlog[0]?.exchanges ?? []).filter((e) => e.shape === 'RETR n').map((e) => Number(e.command.split(' ')[1]));
    if (retrieved.join(',') !== allSnaps.join(',')) throw new Error(`W4: RETR of messages ${retrieved.join(',')}, expected exactly the snapshot alarms ${allSnaps.join(',')}`);
    const images = sub.messages.filter((m) => m.topic.startsWith('pop2mqtt/snapshots/') && m.payload[0] === 0xff && m.payload[1] === 0xd8);
    let fmW4: { run: TimedRun; cost: Cost } | undefined;
    if (WITH_FETCHMAIL) {
      log('W4 fetchmail: first poll from a fresh idfile (same as W1: it always downloads everything)');
      const home = await newFmHome();
      relay.resetCounters();
      const r = await sessionsOf(dovecot, 1, () => fetchmailOnce(home, 600_000));
      fmW4 = { run: r.value, cost: costOf(r.sessions, relay) };
    }
    const idleRss = w2.value.maxRssKiB;
    results.w4 = {
      expected: { top0Bound: bound4, retrBytes: retr4, retrMessages: allSnaps.length },
      pop2mqtt: { ...w4Cost, sessions: w4Cost.sessions.map((s) => s.raw), wallMs: w4.value.wallMs, maxRssKiB: w4.value.maxRssKiB, snapshotsPublished: images.length, poll: parsePollLine(w4.value.stderr) },
      fetchmail: fmW4 && { ...fmW4.cost, sessions: fmW4.cost.sessions.map((s) => s.raw), wallMs: fmW4.run.wallMs, maxRssKiB: fmW4.run.maxRssKiB },
    };
    const W4 = `W4 body rule on ${allSnaps.length} snapshot alarms`;
    rows.push(
      { workload: W4, metric: 'whole-message downloads: RETR (fetchmail: TOP n 99999999); expected: the snapshot alarms', unit: 'n', pop2mqtt: w4Cost.retr, fetchmail: fmW4 ? fmW4.cost.top + fmW4.cost.retr : null },
      { workload: W4, metric: 'bytes from server after login (Dovecot out)', unit: 'B', pop2mqtt: w4Cost.out, fetchmail: fmW4?.cost.out ?? null },
      { workload: W4, metric: 'ratio to TOP-0 bound + RETR of those messages', unit: 'x', pop2mqtt: w4Cost.out / (bound4 + retr4), fetchmail: fmW4 ? fmW4.cost.out / (bound4 + retr4) : null, target: { max: 1.01, text: '≈ 1 (≤ 1.01)' } },
      { workload: W4, metric: 'wire bytes from server (TLS)', unit: 'B', pop2mqtt: w4Cost.wireFromServer, fetchmail: fmW4?.cost.wireFromServer ?? null },
      { workload: W4, metric: 'JPEG snapshots published', unit: 'n', pop2mqtt: images.length, fetchmail: null },
      { workload: W4, metric: 'wall time (whole once run)', unit: 'ms', pop2mqtt: w4.value.wallMs, fetchmail: fmW4?.run.wallMs ?? null },
      { workload: W4, metric: `peak RSS (idle one-shot: ${(idleRss / 1024).toFixed(1)} MiB)`, unit: 'KiB', pop2mqtt: w4.value.maxRssKiB, fetchmail: fmW4?.run.maxRssKiB ?? null, target: { max: idleRss + 40 * 1024, text: `≤ idle + 40 MiB (${((idleRss + 40 * 1024) / 1024).toFixed(1)} MiB)` } },
    );

    // ================= Footprint: idle one-shot against the bare Node floor; the x64 binary (issue 14) =================
    log('footprint: bare Node floor and pop2mqtt --version, 3 runs each (median)');
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const rssOf = async (cmd: string, args: string[]) => median(await Promise.all([0, 1, 2].map(async () => (await timedRun(cmd, args, { timeoutMs: 60_000, cwd: work })).maxRssKiB)));
    const floorKiB = await rssOf(process.execPath, ['-e', 'setTimeout(() => {}, 300)']);
    const versionKiB = await rssOf(process.execPath, [bundle, '--version']);
    const binaryFile = path.join(ROOT, 'dist', 'pop2mqtt-linux-x64');
    let bin: { idleKiB: number; versionKiB: number; soak: Awaited<ReturnType<typeof soak>> } | undefined;
    if (process.arch === 'x64' && existsSync(binaryFile)) {
      log(`footprint: x64 binary (${binaryFile}): idle one-shot poll, then the daemon for ${SOAK_POLLS} idle polls`);
      if (!dropPageCache(binaryFile)) log('footprint: could not drop the binary from the page cache (RSS may include large folios of the build)');
      const binAgent = agent.withBinary(binaryFile);
      const idle = await binAgent.once(w1cfg);
      bin = { idleKiB: idle.maxRssKiB, versionKiB: await rssOf(binaryFile, ['--version']), soak: await soak(dovecot, relay, () => binAgent.daemon(w1cfg), SOAK_POLLS) };
    } else log('footprint: no dist/pop2mqtt-linux-x64 (npm run build:binaries): binary rows left out');
    results.footprint = { floorKiB, versionKiB, idleOnceKiB: w2.value.maxRssKiB, binary: bin && { idleKiB: bin.idleKiB, versionKiB: bin.versionKiB, soak: bin.soak } };
    const FP = 'Footprint (issue 14)';
    rows.push(
      { workload: FP, metric: `bare Node floor: peak RSS of node -e 'setTimeout(()=>{},300)' (${process.version})`, unit: 'KiB', pop2mqtt: floorKiB, fetchmail: null },
      { workload: FP, metric: 'pop2mqtt --version (bundle), peak RSS', unit: 'KiB', pop2mqtt: versionKiB, fetchmail: null },
      { workload: FP, metric: 'idle one-shot poll (W2) ÷ bare Node floor', unit: 'x', pop2mqtt: w2.value.maxRssKiB / floorKiB, fetchmail: null, target: { max: 1.4, text: '≤ 1.4 × floor' } },
    );
    if (bin) {
      rows.push(
        { workload: FP, metric: 'x64 binary: --version, peak RSS', unit: 'KiB', pop2mqtt: bin.versionKiB, fetchmail: null },
        { workload: FP, metric: 'x64 binary: idle one-shot poll, peak RSS', unit: 'KiB', pop2mqtt: bin.idleKiB, fetchmail: null, target: { max: 60 * 1024, text: '≤ 60 MiB' } },
        { workload: FP, metric: `x64 binary: daemon VmRSS after ${SOAK_POLLS} idle polls`, unit: 'KiB', pop2mqtt: bin.soak.rssEndKiB, fetchmail: null, target: { max: 60 * 1024, text: '≤ 60 MiB' } },
      );
    }

    // ================= W5: soak =================
    log(`W5 pop2mqtt: soak, ${SOAK_POLLS} idle polls at 1 s`);
    const w5 = await soak(dovecot, relay, () => agent.daemon(w1cfg), SOAK_POLLS);
    let fmW5: Awaited<ReturnType<typeof soak>> | undefined;
    if (WITH_FETCHMAIL) {
      log(`W5 fetchmail: soak, ${SOAK_POLLS} idle polls at 1 s`);
      fmW5 = await soak(dovecot, relay, () => fetchmailDaemon(fmHomes[0]!, 1), SOAK_POLLS);
    }
    results.w5 = { pop2mqtt: w5, fetchmail: fmW5 };
    const W5 = `W5 soak (${SOAK_POLLS} idle polls, daemon)`;
    rows.push(
      { workload: W5, metric: 'RSS after poll 10', unit: 'KiB', pop2mqtt: w5.rssAt10KiB, fetchmail: fmW5?.rssAt10KiB ?? null },
      { workload: W5, metric: `RSS after poll ${SOAK_POLLS}`, unit: 'KiB', pop2mqtt: w5.rssEndKiB, fetchmail: fmW5?.rssEndKiB ?? null },
      { workload: W5, metric: 'peak RSS (VmHWM)', unit: 'KiB', pop2mqtt: w5.hwmKiB, fetchmail: fmW5?.hwmKiB ?? null },
      { workload: W5, metric: `RSS growth per poll, poll 10 → ${SOAK_POLLS}`, unit: 'KiB', pop2mqtt: (w5.rssEndKiB - w5.rssAt10KiB) / (SOAK_POLLS - 10), fetchmail: fmW5 ? (fmW5.rssEndKiB - fmW5.rssAt10KiB) / (SOAK_POLLS - 10) : null, noRatio: true },
      { workload: W5, metric: 'open fds (max over the soak; min in the JSON)', unit: 'n', pop2mqtt: w5.fdMax, fetchmail: fmW5?.fdMax ?? null },
      { workload: W5, metric: 'bytes after login per poll (Dovecot, mean)', unit: 'B', pop2mqtt: w5.meanBytesAfterLogin, fetchmail: fmW5?.meanBytesAfterLogin ?? null },
      { workload: W5, metric: 'wire bytes per poll (mean, both directions)', unit: 'B', pop2mqtt: w5.meanWire, fetchmail: fmW5?.meanWire ?? null },
    );

    // ================= W6: one gateway, many mailboxes (own Dovecot users, own daemon) =================
    const w6 = await runW6({ bundle, dir: work, mailboxes: W6_MAILBOXES, alarms: W6_ALARMS, log });
    results.w6 = w6.result;
    rows.push(...w6.rows);

    // ================= W4 with 300 messages: the issue's "peak over idle" row, as scripts/bench/memory-w4.ts measures it =================
    if (W4_MESSAGES > 0) {
      log(`W4-${W4_MESSAGES}: memory-w4.ts --messages ${W4_MESSAGES} --runs 2 (own Dovecot and Mosquitto)`);
      const m4 = await timedRun(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'bench', 'memory-w4.ts'), '--messages', String(W4_MESSAGES), '--runs', '2', '--bundle', bundle, '--json'], { cwd: ROOT, timeoutMs: 600_000 });
      const m4Line = m4.stdout.split('\n').find((l) => l.startsWith('MEMW4-JSON '));
      if (m4.code !== 0 || !m4Line) throw new Error(`memory-w4.ts failed (${m4.code ?? m4.signal})\n${m4.stderr.slice(-3000)}`);
      const m4r = JSON.parse(m4Line.slice('MEMW4-JSON '.length)) as { messages: number; snapshots: number; rows: Array<{ run: number; workload: string; rssKiB: number; idleKiB: number; cpuMs: number }> };
      const w4Runs = m4r.rows.filter((r) => r.workload.startsWith('W4'));
      results.w4OneShot = m4r;
      const W4B = `W4, ${m4r.messages} messages (${m4r.snapshots} snapshot RETRs), one-shot`;
      rows.push(
        { workload: W4B, metric: `peak RSS, worst of 2 runs (idle one-shot: ${m4r.rows.filter((r) => r.workload.startsWith('idle')).map((r) => (r.rssKiB / 1024).toFixed(1)).join(' / ')} MiB)`, unit: 'KiB', pop2mqtt: Math.max(...w4Runs.map((r) => r.rssKiB)), fetchmail: null },
        { workload: W4B, metric: `peak RSS over idle, worst of ${w4Runs.length} runs (${w4Runs.map((r) => ((r.rssKiB - r.idleKiB) / 1024).toFixed(1)).join(' / ')} MiB)`, unit: 'KiB', pop2mqtt: Math.max(...w4Runs.map((r) => r.rssKiB - r.idleKiB)), fetchmail: null, target: { max: 25 * 1024, text: '≤ +25 MiB' } },
      );
    }

    // --- report ---
    const table = markdownTable(rows);
    const targets = checkTargets(rows);
    const profile = [
      `TOP-0 bound: ${ref.top0Bytes} B over ${MESSAGES} messages (${(ref.top0Bytes / ref.octets * 100).toFixed(2)} % of ${ref.octets} B).`,
      `Reply sizes of the other commands for this mailbox: STAT ${ref.statBytes} B, full UIDL ${ref.uidlBytes} B, full LIST ${ref.listBytes} B, QUIT ${ref.quitBytes} B.`,
      `W1 pop2mqtt: Dovecot out ${w1Cost.out} B = bound + ${w1Cost.out - ref.top0Bytes} B overhead (${((w1Cost.out / ref.top0Bytes - 1) * 100).toFixed(2)} %).`,
      `W1 pop2mqtt timed first polls (start → last alert / duration_ms / ack_wait_ms, ms): ${w1Runs.map((r) => `${r.lastAlertMs}/${r.poll.durationMs ?? '?'}/${r.poll.ackWaitMs ?? 0}`).join(', ')}.`,
      w1Raw ? `W1 pop2mqtt commands after login (rawlog; count × reply bytes): ${describeShapes(w1Raw)}; ${w1Raw.roundTrips} round trips on loopback.` : 'W1 rawlog: missing',
      w1s.rawlog[0] ? `W1 over a 20 ms RTT link: ${roundTripsOver(w1s.rawlog[0], 10)} round trips after login; server idle gaps before TOP commands: ${w1s.rawlog[0].exchanges.filter((e) => e.shape === 'TOP n 0' && e.idleBeforeMs > 10).length}; poll ${w1s.value.poll.durationMs} ms vs ${w1t.poll.durationMs} ms on loopback.` : 'W1 rtt20 rawlog: missing',
      `W2 idle poll after login (rawlog): pop2mqtt ${w2Cost.in + w2Cost.out} B = login reply ${w2r.rawlog[0]?.loginReplyBytes ?? '?'} B + ${describeExchanges(w2r.rawlog[0])}${fmW2 ? `; fetchmail ${fmW2.cost.in + fmW2.cost.out} B = login reply ${fmW2.rawlog?.loginReplyBytes ?? '?'} B + ${describeExchanges(fmW2.rawlog)}` : ''}.`,
      `W2 TLS floor (raw client: handshake, greeting, QUIT; no login): TLS 1.3 full ${wireOf2(floor13.full)} B, resumed ${wireOf2(floor13.resumed)} B${floor13.reused ? '' : ' (NOT resumed)'}; TLS 1.2 full ${wireOf2(floor12.full)} B, resumed ${wireOf2(floor12.resumed)} B${floor12.reused ? '' : ' (NOT resumed)'} (Node's default hellos); with pop2mqtt's hellos full ${wireOf2(floorOwn.full)} B, resumed (lean TLS 1.3 hello) ${wireOf2(floorOwn.resumed)} B${floorOwn.reused ? '' : ' (NOT resumed)'}.`,
      `W2 pop2mqtt daemon polls, wire bytes from/to server: ${w2d.perPoll.map((c) => `${c.wireFromServer}/${c.wireToServer}`).join(', ')} (poll 1 = full handshake); resumed poll minus the resumed floor with the same hellos = ${resumedWire(w2d) - wireOf2(floorOwn.resumed)} B for the POP3 dialogue (AUTH PLAIN, commands after login; CAPA is remembered) and its TLS records.`,
      w4r.rawlog[0] ? `W4 pop2mqtt commands after login (rawlog): ${describeShapes(w4r.rawlog[0])}; RETR went to exactly the ${allSnaps.length} snapshot alarms.` : 'W4 rawlog: missing',
      `W4 pop2mqtt: Dovecot out ${w4Cost.out} B = bound ${bound4} + RETR ${retr4} + ${w4Cost.out - bound4 - retr4} B overhead; Dovecot RETR bytes ${w4Cost.retrBytes} for ${w4Cost.retr} RETR.`,
      ...w6.profile,
    ];
    const summary = {
      version: 1,
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      git,
      node: process.version,
      host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, platform: `${os.platform()} ${os.release()}` },
      params: { messages: MESSAGES, seed: SEED, soakPolls: SOAK_POLLS, newMails: NEW_MAILS, fetchmail: WITH_FETCHMAIL },
      corpus: { messages: MESSAGES, bytes: corpusBytes, headerBytes: corpusHeaderBytes, headerShare: corpusHeaderBytes / corpusBytes, kinds: kindCount(kinds) },
      reference: { top0Bytes: ref.top0Bytes, statBytes: ref.statBytes, uidlBytes: ref.uidlBytes, listBytes: ref.listBytes, quitBytes: ref.quitBytes, snapshotRetrBytes: retrRef.bytes, snapshotMessages: snapMsgs.length },
      workloads: results,
      rows,
      targets,
      profile,
    };
    await mkdir(values.out!, { recursive: true });
    const file = path.join(values.out!, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify(summary, replacer, 2) + '\n');

    process.stdout.write(`\n## pop2mqtt bench — ${started.toISOString()} — ${git.commit.slice(0, 12)}${git.dirty ? ' (dirty tree)' : ''}, Node ${process.version}\n\n`);
    process.stdout.write(`Corpus: ${MESSAGES} messages, ${(corpusBytes / 1e6).toFixed(1)} MB, headers ${(corpusHeaderBytes / corpusBytes * 100).toFixed(2)} % of bytes, ${alarmCount} alarms (${snapMsgs.length} with JPEG snapshot); seed ${SEED}.\n\n`);
    process.stdout.write(`${table}\n\n`);
    process.stdout.write(`${profile.map((p) => `- ${p}`).join('\n')}\n\n`);
    const missed = targets.filter((t) => !t.met);
    process.stdout.write(missed.length ? `Targets missed: ${missed.map((t) => `${t.workload} / ${t.metric} (${t.target})`).join('; ')}\n` : 'All targets met.\n');
    process.stdout.write(`JSON: ${path.relative(process.cwd(), file)}\n`);
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  }
}

/** Run fn with Dovecot's rawlog on for the bench user; returns fn's value and the sessions it logged. */
async function withRawlog<T>(dovecot: DovecotServer, fn: () => Promise<T>): Promise<{ value: T; rawlog: RawlogSession[] }> {
  const dir = await enableRawlog(dovecot.maildir(USER));
  try {
    const value = await fn();
    let sessions: RawlogSession[] = [];
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      sessions = await readSessions(dir);
      if (sessions.length && sessions.every((s) => s.exchanges.some((e) => e.shape === 'QUIT'))) break;
      await sleep(20);
    }
    return { value, rawlog: sessions };
  } finally {
    await disableRawlog(dir);
  }
}

/** Commands by shape with their reply bytes, for the JSON. */
function shapeTable(s: RawlogSession): Record<string, { count: number; replyBytes: number }> {
  return Object.fromEntries(Object.keys(s.counts).map((k) => [k, { count: s.counts[k]!, replyBytes: s.bytesByShape[k] ?? 0 }]));
}

/** Bytes of the commands a client sent after login and of their replies (the login reply excluded). */
function ownBytes(s: RawlogSession | undefined): number | null {
  return s ? s.inBytes + s.outBytes - s.loginReplyBytes : null;
}

/** "CAPA (6+59 B), STAT (6+20 B)": command and reply bytes of each exchange. */
function describeExchanges(s: RawlogSession | undefined): string {
  if (!s) return 'no rawlog';
  return s.exchanges.map((e) => `${e.command.split(' ')[0]} (${Buffer.byteLength(e.command) + 2}+${e.replyBytes} B)`).join(', ');
}

function describeShapes(s: RawlogSession): string {
  return Object.keys(s.counts).map((k) => `${k} ${s.counts[k]} × = ${s.bytesByShape[k]} B`).join(', ');
}

/** A first poll (fresh state dir) of the header rules at `port`: time from process start to the last alert, RSS. */
async function timeFirstPoll(agent: AgentHarness, sub: Subscriber, port: number, name: string, alerts: number) {
  const cfg = await agent.writeConfig(name, { stateDir: `state-${name}`, rules: headerRules(), port });
  sub.clear();
  const run = await agent.once(cfg);
  const got = await sub.waitForCount(alerts, 30_000, (m) => m.topic.startsWith('pop2mqtt/alerts/'));
  if (got.length !== alerts) throw new Error(`${name}: ${got.length} alerts, expected ${alerts}`);
  return { run, lastAlertMs: Math.max(...got.map((m) => m.receivedAt)) - run.startedAt, poll: parsePollLine(run.stderr) };
}

function replacer(_k: string, v: unknown): unknown {
  return v instanceof Map ? Object.fromEntries(v) : v;
}

function simpleCost(c: Cost) {
  return { out: c.out, in: c.in, top: c.top, retr: c.retr, wireFromServer: c.wireFromServer, wireToServer: c.wireToServer };
}
const wireOf = (c: Cost) => c.wireFromServer + c.wireToServer;
const wireOf2 = (c: { fromServer: number; toServer: number }) => c.fromServer + c.toServer;

function assertCost(what: string, c: Cost, expect: { top?: number; retr?: number }): void {
  if (expect.top !== undefined && c.top !== expect.top) throw new Error(`${what}: ${c.top} TOP, expected ${expect.top}\n${c.sessions.map((s) => s.raw).join('\n')}`);
  if (expect.retr !== undefined && c.retr !== expect.retr) throw new Error(`${what}: ${c.retr} RETR, expected ${expect.retr}\n${c.sessions.map((s) => s.raw).join('\n')}`);
}

/** Fields of the agent's `poll` log line (logfmt-like key=value). */
function parsePollLine(text: string): { durationMs?: number; ackWaitMs?: number; bytes?: number; line?: string } {
  const line = text.split('\n').reverse().find((l) => / poll (?:.* )?messages=/.test(l));
  if (!line) return {};
  const num = (k: string) => {
    const m = new RegExp(`\\b${k}=(\\d+)`).exec(line);
    return m ? Number(m[1]) : undefined;
  };
  return { durationMs: num('duration_ms'), ackWaitMs: num('ack_wait_ms'), bytes: num('bytes'), line: line.trim() };
}

/** A daemon (pop2mqtt run or fetchmail -d) behind the relay for n polls: per-poll costs (poll k = relay connection k = logout line k). */
async function daemonPolls(dovecot: DovecotServer, relay: Relay, start: () => { child: import('node:child_process').ChildProcess; output: () => string }, n: number): Promise<{ perPoll: Cost[]; output: string }> {
  const before = (await dovecot.settled()).length;
  relay.resetCounters();
  const d = start();
  try {
    const lines = await dovecot.logoutLines({ atLeast: before + n, timeoutMs: n * 5_000 + 10_000 }).catch((e: Error) => {
      throw new Error(`${e.message}\ndaemon output:\n${d.output().slice(-3000)}`);
    });
    await sleep(50);
    const perPoll = lines.slice(before, before + n).map((s, k) => costOf([s], relay, k, k + 1));
    return { perPoll, output: d.output() };
  } finally {
    await stopChild(d.child);
    await dovecot.settled();
  }
}

/** Deliver mails right after an idle poll of the running daemon; time until every alert is on MQTT; cost of the sessions that fetched them. */
async function newMailLatency(dovecot: DovecotServer, relay: Relay, sub: Subscriber, start: () => { child: import('node:child_process').ChildProcess; output: () => string }, raws: Buffer[]) {
  const before = (await dovecot.settled()).length;
  relay.resetCounters();
  const d = start();
  try {
    await dovecot.logoutLines({ atLeast: before + 1, timeoutMs: 15_000 });
    sub.clear();
    for (const r of raws) await dovecot.deliver(USER, r);
    const delivered = Date.now();
    const afterDelivery = (await dovecot.logoutLines()).length;
    const alerts = await sub.waitForCount(raws.length, 30_000, (m) => m.topic.startsWith('pop2mqtt/alerts/'));
    const latencyMs = Math.max(...alerts.map((m) => m.receivedAt)) - delivered;
    // The session(s) after delivery that fetched the new mail.
    let lines: LogoutStats[] = [];
    await waitUntil(async () => {
      lines = (await dovecot.logoutLines()).slice(afterDelivery);
      return sum(lines.map((l) => l.top)) >= raws.length;
    }, 10_000, 'the logout line of the poll that fetched the new mail');
    const idx = lines.findIndex((l) => l.top > 0);
    const last = lines.length - 1 - [...lines].reverse().findIndex((l) => l.top > 0);
    const used = lines.slice(idx, last + 1);
    const connFrom = afterDelivery - before + idx;
    await sleep(50);
    const cost = costOf(used, relay, connFrom, connFrom + used.length);
    const out = d.output();
    const pollLine = out.split('\n').find((l) => / poll /.test(l) && new RegExp(`\\bnew=${raws.length}\\b`).test(l)) ?? '';
    return { latencyMs, cost, poll: parsePollLine(pollLine) };
  } finally {
    await stopChild(d.child);
    await dovecot.settled();
  }
}

/** Many idle polls of a daemon: RSS and fd samples after each, bytes per poll. */
async function soak(dovecot: DovecotServer, relay: Relay, start: () => { child: import('node:child_process').ChildProcess; output: () => string }, polls: number) {
  const before = (await dovecot.settled()).length;
  relay.resetCounters();
  const d = start();
  const pid = d.child.pid!;
  const samples: Array<ProcSample & { poll: number }> = [];
  try {
    for (let k = 1; k <= polls; k++) {
      await dovecot.logoutLines({ atLeast: before + k, timeoutMs: 15_000 }).catch((e: Error) => {
        throw new Error(`${e.message}\ndaemon output:\n${d.output().slice(-3000)}`);
      });
      const s = sampleProc(pid);
      if (!s) throw new Error(`daemon exited during the soak\n${d.output().slice(-3000)}`);
      samples.push({ ...s, poll: k });
    }
    const lines = (await dovecot.logoutLines()).slice(before, before + polls);
    await sleep(50);
    const conns = relay.connectionStats.slice(0, polls);
    const at = (k: number) => samples.find((s) => s.poll === k)!;
    return {
      polls,
      rssAt1KiB: at(1).rssKiB,
      rssAt10KiB: at(10).rssKiB,
      rssEndKiB: at(polls).rssKiB,
      rssMaxKiB: Math.max(...samples.map((s) => s.rssKiB)),
      hwmKiB: Math.max(...samples.map((s) => s.hwmKiB)),
      fdMin: Math.min(...samples.map((s) => s.fds)),
      fdMax: Math.max(...samples.map((s) => s.fds)),
      fdEnd: at(polls).fds,
      meanBytesAfterLogin: sum(lines.map((l) => l.in + l.out)) / lines.length,
      meanWire: sum(conns.map((c) => c.fromServer + c.toServer)) / conns.length,
      tops: sum(lines.map((l) => l.top)),
      retrs: sum(lines.map((l) => l.retr)),
      samples: samples.map((s) => ({ poll: s.poll, rssKiB: s.rssKiB, fds: s.fds })),
    };
  } finally {
    await stopChild(d.child);
    await dovecot.settled();
  }
}

function gitInfo(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
