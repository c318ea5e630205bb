// Bench workload W6, one gateway for a building: N mailboxes (Dovecot users) in one daemon on a 30 s schedule — login spread, sessions at once, RSS vs one mailbox, CPU per idle poll, 10 alarms per mailbox each alerted exactly once.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startDovecot } from '../../test/support/dovecot.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { startRelay, type Relay } from '../../test/support/relay.js';
import { subscribe } from '../../test/support/mqtt-subscriber.js';
import { tagged } from './economy-lab.js';
import { AgentHarness } from './agent.js';
import { sampleProc, stopChild } from './proc.js';
import type { Row } from './report.js';

export interface W6Options {
  /** The esbuild bundle under test. */
  bundle: string;
  /** Working dir for configs and state. */
  dir: string;
  mailboxes: number;
  /** New alarm mails in all, spread evenly over the mailboxes. */
  alarms: number;
  log: (s: string) => void;
}

const PASS = 'w6-Pop3-pw-6100';
const SCHEDULE = '*/30 * * * * *';
const LIMIT = 4;
const RULE = `  - name: alarm
    when:
      subject: { regex: "^ALARM (?<tag>\\\\S+)$" }
    publish: { topic: "alerts/{{mailbox}}/{{tag}}" }
`;

/** utime + stime of a live process, in ms (from /proc/PID/stat, clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Most connections the relay accepted within any window of `ms` (sliding, from each connection's accept time). */
function maxInWindow(times: number[], ms: number): number {
  const t = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runW6(o: W6Options): Promise<{ rows: Row[]; result: Record<string, unknown>; profile: string[] }> {
  const users = Array.from({ length: o.mailboxes }, (_, i) => `w6u${String(i + 1).padStart(3, '0')}`);
  o.log(`W6: starting Dovecot with ${users.length} users, Mosquitto, relay`);
  const [dovecot, mosquitto] = await Promise.all([startDovecot({ users: users.map((user) => ({ user, pass: PASS })) }), startMosquitto()]);
  let relay: Relay | undefined;
  const sub = await subscribe(mosquitto.url, ['w6/alerts/#']);
  try {
    relay = await startRelay('127.0.0.1', dovecot.tlsPort);
    const harness = new AgentHarness({ bundle: o.bundle, dir: o.dir, mqttUrl: mosquitto.url, pop3Port: relay.port, caFile: dovecot.caFile, user: users[0]!, pass: PASS });
    const writeConfig = async (name: string, ids: string[], schedule: string) => {
      const file = path.join(o.dir, `${name}.yaml`);
      await writeFile(file, `state_dir: ${path.join(o.dir, `state-${name}`)}
max_concurrent_polls: ${LIMIT}
mqtt:
  url: ${mosquitto.url}
  base_topic: w6
mailboxes:
${ids.map((u) => `  - id: ${u}
    host: 127.0.0.1
    port: ${relay!.port}
    tls: implicit
    ca_file: ${dovecot.caFile}
    servername: localhost
    username: ${u}
    password: \${BENCH_POP3_PASSWORD}
    schedule: "${schedule}"
    keep: true
    existing: process
`).join('')}rules:
${RULE}`, { mode: 0o600 });
      return file;
    };
    const logouts = async () => (await dovecot.logoutLines()).length;

    // --- baseline: the same daemon with one mailbox, idle, after 5 polls (1 s schedule, so it does not take minutes) ---
    o.log('W6: baseline, one mailbox idle (daemon, 1 s schedule, RSS after 5 idle polls)');
    const one = harness.daemon(await writeConfig('w6-one', [users[0]!], '* * * * * *'));
    let oneRssKiB: number;
    try {
      const start = await logouts();
      const deadline = Date.now() + 60_000;
      while ((await logouts()) < start + 5) {
        if (Date.now() > deadline || one.child.exitCode !== null) throw new Error(`W6 baseline: no 5 polls\n${one.output().slice(-2000)}`);
        await sleep(50);
      }
      await sleep(200);
      oneRssKiB = sampleProc(one.child.pid!)!.rssKiB;
    } finally {
      await stopChild(one.child);
      await dovecot.settled();
    }

    // --- N mailboxes, one daemon, 30 s schedule: two idle rounds ---
    o.log(`W6: ${users.length} mailboxes in one daemon, schedule "${SCHEDULE}", max_concurrent_polls ${LIMIT}: two idle rounds (about 1 min)`);
    const cfg = await writeConfig('w6', users, SCHEDULE);
    const base = await logouts();
    relay.resetCounters();
    const d = harness.daemon(cfg);
    const pid = d.child.pid!;
    const waitPolls = async (n: number, timeoutMs: number, what: string) => {
      const deadline = Date.now() + timeoutMs;
      while ((await logouts()) < base + n) {
        if (Date.now() > deadline || d.child.exitCode !== null) throw new Error(`W6: timed out waiting for ${what} (${(await logouts()) - base} of ${n} polls)\n${d.output().slice(-3000)}`);
        await sleep(50);
      }
    };
    try {
      await waitPolls(users.length, 120_000, 'the first round of polls');
      const cpu1 = await cpuMs(pid);
      const t1 = Date.now();
      await waitPolls(2 * users.length, 120_000, 'the second (idle) round');
      const cpu2 = await cpuMs(pid);
      const roundMs = Date.now() - t1;
      await sleep(200);
      const idle = sampleProc(pid)!;
      const idleConns = relay.connectionStats.map((c) => c.openedAt);

      // --- alarms: spread over the mailboxes, delivered at once; every one alerted exactly once ---
      o.log(`W6: delivering ${o.alarms} alarm mails over ${users.length} mailboxes`);
      sub.clear();
      const expected: string[] = [];
      const deliveredAt = Date.now();
      for (let k = 0; k < o.alarms; k++) {
        const u = users[k % users.length]!;
        const tag = `a${k}`;
        await dovecot.deliver(u, tagged(tag, { bodyBytes: 400 }));
        expected.push(`w6/alerts/${u}/${tag}`);
      }
      await sub.waitForCount(expected.length, 180_000);
      const lastAlertMs = Math.max(...sub.messages.map((m) => m.receivedAt)) - deliveredAt;
      // One more full round after the last alert: a duplicate would show up here.
      const after = (await logouts()) - base;
      await waitPolls(after + users.length, 120_000, 'one more round after the alarms');
      await sleep(500);
      const counts = new Map<string, number>();
      for (const m of sub.messages) counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
      const missing = expected.filter((t) => !counts.has(t)).length;
      const duplicates = [...counts.values()].filter((n) => n > 1).length;
      const unexpected = [...counts.keys()].filter((t) => !expected.includes(t)).length;
      const end = sampleProc(pid)!;
      const stateFiles = (await readdir(path.join(o.dir, 'state-w6'))).filter((f) => f.endsWith('.state.json')).length;
      const failed = (d.output().match(/poll failed/g) ?? []).length;

      const allConns = relay.connectionStats.map((c) => c.openedAt);
      const result = {
        mailboxes: users.length, schedule: SCHEDULE, maxConcurrentPolls: LIMIT, alarms: o.alarms,
        loginsMaxPerSecondIdle: maxInWindow(idleConns, 1000), loginsMaxPerSecondAll: maxInWindow(allConns, 1000),
        maxSessionsOpen: relay.maxOpen, connections: relay.connections,
        oneMailboxIdleRssKiB: oneRssKiB, idleRssKiB: idle.rssKiB, rssOverOneKiB: idle.rssKiB - oneRssKiB, endRssKiB: end.rssKiB, hwmKiB: end.hwmKiB,
        cpuPerIdlePollMs: (cpu2 - cpu1) / users.length, idleRoundMs: roundMs,
        alertsReceived: sub.messages.length, missing, duplicates, unexpected, lastAlertAfterDeliveryMs: lastAlertMs,
        stateFiles, pollFailures: failed,
      };
      // --- `once` of every mailbox together: all polls are requested at the same moment, the limit must hold ---
      await stopChild(d.child);
      await dovecot.settled();
      o.log(`W6: pop2mqtt once with all ${users.length} mailboxes (idle): the polls queue for ${LIMIT} slots`);
      relay.resetCounters();
      const burst = await harness.once(cfg);
      const onceResult = { sessions: relay.connections, maxSessionsOpen: relay.maxOpen, wallMs: burst.wallMs, maxRssKiB: burst.maxRssKiB };
      if (onceResult.sessions !== users.length) throw new Error(`W6 once: ${onceResult.sessions} sessions for ${users.length} mailboxes\n${burst.stderr.slice(-2000)}`);
      Object.assign(result, { once: onceResult });
      if (missing || duplicates || unexpected) throw new Error(`W6: ${missing} alerts missing, ${duplicates} duplicated, ${unexpected} unexpected\n${JSON.stringify(result)}`);
      const W6 = `W6 gateway (${users.length} mailboxes, one daemon, "${SCHEDULE}", max_concurrent_polls ${LIMIT})`;
      const rows: Row[] = [
        { workload: W6, metric: 'logins in any 1 s (idle round; whole run in the JSON)', unit: 'n', pop2mqtt: result.loginsMaxPerSecondIdle, fetchmail: null, target: { max: 2 * LIMIT, text: `≤ ${2 * LIMIT} (no burst: without poll_spread all ${users.length} queue at the tick)` } },
        { workload: W6, metric: 'POP3 sessions open at once (max, relay)', unit: 'n', pop2mqtt: result.maxSessionsOpen, fetchmail: null, target: { max: LIMIT, text: `≤ ${LIMIT}` } },
        { workload: W6, metric: `\`once\` of all ${users.length} mailboxes together: sessions open at once (max)`, unit: 'n', pop2mqtt: onceResult.maxSessionsOpen, fetchmail: null, target: { max: LIMIT, text: `≤ ${LIMIT}` } },
        { workload: W6, metric: `\`once\` of all ${users.length} mailboxes (idle): wall time`, unit: 'ms', pop2mqtt: onceResult.wallMs, fetchmail: null },
        { workload: W6, metric: 'RSS, one mailbox idle (daemon after 5 polls)', unit: 'KiB', pop2mqtt: oneRssKiB, fetchmail: null },
        { workload: W6, metric: `RSS, ${users.length} mailboxes idle (after two rounds)`, unit: 'KiB', pop2mqtt: idle.rssKiB, fetchmail: null },
        { workload: W6, metric: `RSS over one mailbox`, unit: 'KiB', pop2mqtt: result.rssOverOneKiB, fetchmail: null, target: { max: 20 * 1024, text: '≤ +20 MiB' } },
        { workload: W6, metric: 'CPU per idle poll (utime+stime over a round ÷ polls)', unit: 'ms', pop2mqtt: result.cpuPerIdlePollMs, fetchmail: null },
        { workload: W6, metric: `${o.alarms} alarms: alerts received once each`, unit: 'n', pop2mqtt: expected.length - missing - duplicates, fetchmail: null },
        { workload: W6, metric: 'last alarm alerted after delivery', unit: 'ms', pop2mqtt: lastAlertMs, fetchmail: null },
        { workload: W6, metric: 'state files (one per mailbox)', unit: 'n', pop2mqtt: stateFiles, fetchmail: null },
      ];
      const profile = [
        `W6: ${users.length} mailboxes, ${result.connections} POP3 sessions in the daemon; logins in any 1 s: ${result.loginsMaxPerSecondIdle} in the idle round, ${result.loginsMaxPerSecondAll} over the whole run (first round and alarms included); at most ${result.maxSessionsOpen} sessions open at once; idle round took ${(roundMs / 1000).toFixed(1)} s; ${failed} failed polls. \`once\` of all ${users.length}: ${onceResult.sessions} sessions, at most ${onceResult.maxSessionsOpen} open at once, ${(onceResult.wallMs / 1000).toFixed(1)} s, peak RSS ${(onceResult.maxRssKiB / 1024).toFixed(1)} MiB.`,
        `W6 RSS: one mailbox idle ${(oneRssKiB / 1024).toFixed(1)} MiB, ${users.length} mailboxes idle ${(idle.rssKiB / 1024).toFixed(1)} MiB (+${((idle.rssKiB - oneRssKiB) / 1024).toFixed(1)} MiB), after the ${o.alarms} alarms ${(end.rssKiB / 1024).toFixed(1)} MiB, peak ${(end.hwmKiB / 1024).toFixed(1)} MiB; CPU ${result.cpuPerIdlePollMs.toFixed(1)} ms per idle poll.`,
      ];
      return { rows, result, profile };
    } finally {
      await stopChild(d.child);
    }
  } finally {
    await sub.close().catch(() => {});
    await relay?.close().catch(() => {});
    await mosquitto.stop().catch(() => {});
    await dovecot.stop().catch(() => {});
  }
}
