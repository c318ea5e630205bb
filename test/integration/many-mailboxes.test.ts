// Many mailboxes on one agent (issue 14, W6) against real Dovecot through the real CLI: max_concurrent_polls holds for `once` and for scheduled polls, every alert arrives exactly once, state is one file per mailbox.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { startRelay, type Relay } from '../support/relay.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { runCli, startDaemon, until } from '../support/lab.js';
import { tagged } from '../../scripts/bench/economy-lab.js';

const N = 12;
const LIMIT = 2;
const USERS = Array.from({ length: N }, (_, i) => `tenant${String(i + 1).padStart(2, '0')}`);
const PASS = 'many-Pop3-pw-3307';

let dovecot: DovecotServer;
let mosquitto: MosquittoServer;
let relay: Relay;
let sub: Subscriber;
let dir: string;

before(async () => {
  [dovecot, mosquitto] = await Promise.all([startDovecot({ users: USERS.map((user) => ({ user, pass: PASS })) }), startMosquitto()]);
  relay = await startRelay('127.0.0.1', dovecot.tlsPort);
  sub = await subscribe(mosquitto.url, ['many/alerts/#']);
  dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-many-'));
});
after(async () => {
  await sub?.close();
  await relay?.close();
  await mosquitto?.stop();
  await dovecot?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function writeConfig(schedule: string): Promise<string> {
  const file = path.join(dir, 'gateway.yaml');
  const mailboxes = USERS.map((u) => `  - id: ${u}
    host: 127.0.0.1
    port: ${relay.port}
    tls: implicit
    ca_file: ${dovecot.caFile}
    servername: localhost
    username: ${u}
    password: \${POP3_PASSWORD}
    schedule: "${schedule}"
    keep: true
    existing: process
`).join('');
  await writeFile(file, `state_dir: ./state
max_concurrent_polls: ${LIMIT}
poll_spread: 5s
mqtt:
  url: ${mosquitto.url}
  base_topic: many
mailboxes:
${mailboxes}rules:
  - name: alarm
    when:
      subject: { regex: "^ALARM (?<tag>\\\\S+)$" }
    publish: { topic: "alerts/{{mailbox}}/{{tag}}" }
`, { mode: 0o600 });
  return file;
}

const env = { ...process.env, POP3_PASSWORD: PASS };

/** Alert topics received so far, with how often each arrived. */
function alertCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of sub.messages) counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
  return counts;
}

async function deliverAll(round: string, perUser: number): Promise<string[]> {
  const topics: string[] = [];
  for (const u of USERS) {
    for (let k = 0; k < perUser; k++) {
      const tag = `${round}-${u}-${k}`;
      await dovecot.deliver(u, tagged(tag));
      topics.push(`many/alerts/${u}/${tag}`);
    }
  }
  return topics;
}

function assertExactlyOnce(expected: string[]): void {
  const counts = alertCounts();
  const missing = expected.filter((t) => !counts.has(t));
  const twice = [...counts].filter(([, n]) => n > 1).map(([t]) => t);
  assert.deepEqual(missing, [], 'every alert arrives');
  assert.deepEqual(twice, [], 'no alert arrives twice');
  assert.equal(counts.size, expected.length, 'no other alerts');
}

test(`once with ${N} mailboxes and max_concurrent_polls: ${LIMIT}: never more than ${LIMIT} sessions open, every alert exactly once, one state file per mailbox`, async () => {
  const expected = await deliverAll('once', 3);
  const cfg = await writeConfig('*/30 * * * * *');
  relay.resetCounters();
  const r = await runCli(['once', '--config', cfg], { env, cwd: dir, timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(relay.connections, N, 'one session per mailbox');
  assert.ok(relay.maxOpen <= LIMIT, `at most ${LIMIT} sessions at once, saw ${relay.maxOpen}`);
  // All were queued at once, so the limit was reached, not merely respected by accident.
  assert.equal(relay.maxOpen, LIMIT);
  await sub.waitForCount(expected.length, 60_000);
  await new Promise((res) => setTimeout(res, 300));
  assertExactlyOnce(expected);
  const stateFiles = (await readdir(path.join(dir, 'state'))).filter((f) => USERS.some((u) => f.startsWith(u)));
  assert.deepEqual(stateFiles.map((f) => f.replace(/\..*$/, '')).sort(), [...USERS].sort(), `one state file per mailbox: ${stateFiles.join(', ')}`);
});

test(`the daemon's scheduled polls, spread over the interval, keep to max_concurrent_polls and alert new mail exactly once`, async () => {
  sub.clear();
  const cfg = await writeConfig('*/5 * * * * *');
  const before = (await dovecot.settled()).length;
  relay.resetCounters();
  const d = startDaemon(['run', '--config', cfg], { env, cwd: dir });
  try {
    // Every mailbox polled once (idle), then new mail for each, fetched by the next scheduled polls.
    await until(async () => (await dovecot.logoutLines()).length >= before + N, 120_000, `${N} idle polls\n${d.output().slice(-2000)}`);
    const expected = await deliverAll('daemon', 2);
    await sub.waitForCount(expected.length, 120_000);
    await until(async () => (await dovecot.logoutLines()).length >= before + 3 * N, 120_000, `three rounds of polls\n${d.output().slice(-2000)}`);
    assertExactlyOnce(expected);
    assert.ok(relay.maxOpen <= LIMIT, `at most ${LIMIT} sessions at once, saw ${relay.maxOpen}`);
    assert.doesNotMatch(d.output(), /poll failed/);
  } finally {
    d.child.kill('SIGTERM');
    await d.exited;
  }
});
