// Economy of the UID sync against real Dovecot, through the real CLI: incremental UIDL stays correct when mail is deleted by another client, the mailbox is emptied or new mail arrives (alone or together), idle polls stop after STAT, and each message is previewed once in its life.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { startEconomyLab, tagged, PASSWORD, type EconomyLab } from '../../scripts/bench/economy-lab.js';
import { RawPop3 } from '../../scripts/bench/raw-pop3.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';

const USERS = ['grow', 'prefix', 'middle', 'empty', 'idle', 'life'];
const RULES = `  - name: alarm
    when:
      subject: { regex: "^ALARM (?<tag>\\\\S+)$" }
    publish: { topic: "alerts/{{tag}}" }
`;

let lab: EconomyLab;
let sub: Subscriber;

before(async () => {
  lab = await startEconomyLab({ users: USERS });
  sub = await subscribe(lab.mosquitto.url, USERS.map((u) => `econ-${u}/alerts/#`));
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

/** Tags alerted for a user so far (from the alert topics). */
function alerted(user: string): string[] {
  return sub.messages.filter((m) => m.topic.startsWith(`econ-${user}/alerts/`)).map((m) => m.topic.slice(`econ-${user}/alerts/`.length));
}

async function deliver(user: string, tags: string[]): Promise<void> {
  await lab.dovecot.deliverMany(user, tags.map((t) => tagged(t)));
}

/** Poll once; wait until the user's alert count reaches `expectTotal`, and a moment more to catch extras. */
async function poll(user: string, cfg: string, expectTotal: number) {
  const r = await lab.once(user, cfg);
  await sub.waitForCount(expectTotal, 10_000, (m) => m.topic.startsWith(`econ-${user}/alerts/`));
  await new Promise((res) => setTimeout(res, 150));
  return r;
}

/** Delete messages by number through a second POP3 session (DELE + QUIT), as another client would. */
async function deleteViaPop3(user: string, msgs: number[]): Promise<void> {
  const s = await RawPop3.login({ host: '127.0.0.1', port: lab.dovecot.port, user, pass: PASSWORD, timeoutMs: 10_000 });
  const replies = await s.many(msgs.map((n) => `DELE ${n}`), false);
  assert.ok(replies.every((r) => r.ok), replies.map((r) => r.status).join('; '));
  await s.quit();
  // Its logout line reaches Dovecot's log asynchronously: wait for it, so the next poll's session count is its own.
  await lab.dovecot.settled();
}

const sorted = (xs: string[]) => [...xs].sort();

test('new mail appended: the next poll uses UIDL n (no full UIDL), previews only the new messages, alerts each once', async () => {
  const u = 'grow';
  const cfg = await lab.writeConfig(u, { rules: RULES });
  await deliver(u, ['g1', 'g2', 'g3', 'g4', 'g5', 'g6']);
  const p1 = await poll(u, cfg, 6);
  assert.equal(p1.rawlog.counts.UIDL, 1, 'first poll has no state: one full UIDL');
  assert.equal(p1.logout.top, 6);

  await deliver(u, ['g7', 'g8', 'g9']);
  const p2 = await poll(u, cfg, 9);
  assert.equal(p2.rawlog.counts.UIDL ?? 0, 0, `no full UIDL when mail was only appended: ${JSON.stringify(p2.rawlog.counts)}`);
  assert.ok((p2.rawlog.counts['UIDL n'] ?? 0) >= 3, 'the new messages are identified with UIDL n');
  assert.equal(p2.logout.top, 3, p2.logout.raw);
  assert.equal(p2.logout.retr, 0);
  assert.deepEqual(sorted(alerted(u)), sorted(['g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7', 'g8', 'g9']));
});

test('oldest mail deleted by another client (Maildir files) plus new mail: binary search finds the survivors without a full UIDL', async () => {
  const u = 'prefix';
  const cfg = await lab.writeConfig(u, { rules: RULES });
  await deliver(u, ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8']);
  await poll(u, cfg, 8);
  const files = await lab.dovecot.messageFiles(u);
  assert.equal(files.length, 8);
  // Maildir file names start with the delivery time stamp: by base name they sort in delivery (= UID) order.
  const oldest = [...files].sort((a, b) => (path.basename(a) < path.basename(b) ? -1 : 1)).slice(0, 3);
  for (const f of oldest) await rm(f);
  await deliver(u, ['p9', 'p10']);
  const p2 = await poll(u, cfg, 10);
  assert.equal(p2.rawlog.counts.UIDL ?? 0, 0, `survivors found by UIDL n probes: ${JSON.stringify(p2.rawlog.counts)}`);
  assert.equal(p2.logout.msgs, 7);
  assert.equal(p2.logout.top, 2, 'only the two new messages are previewed');
  assert.deepEqual(sorted(alerted(u)), sorted(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9', 'p10']));
  // And the state is right afterwards: an idle poll previews nothing and alerts nothing.
  const p3 = await poll(u, cfg, 10);
  assert.equal(p3.logout.top, 0);
  assert.equal(alerted(u).length, 10);
});

test('mail deleted from the middle by another POP3 session (DELE + QUIT) plus new mail: correct, only new mail previewed', async () => {
  const u = 'middle';
  const cfg = await lab.writeConfig(u, { rules: RULES });
  await deliver(u, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
  await poll(u, cfg, 7);
  await deleteViaPop3(u, [2, 5]);
  await deliver(u, ['m8', 'm9']);
  const p2 = await poll(u, cfg, 9);
  assert.equal(p2.logout.msgs, 7);
  assert.equal(p2.logout.top, 2, `only the new messages are previewed: ${p2.logout.raw}`);
  assert.deepEqual(sorted(alerted(u)), sorted(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']));
  // Delete again (the newest one this time) without new mail: nothing is previewed or alerted.
  await deleteViaPop3(u, [7]);
  const p3 = await poll(u, cfg, 9);
  assert.equal(p3.logout.top, 0, p3.logout.raw);
  assert.equal(p3.logout.msgs, 6);
  // New mail after that still alerts exactly once.
  await deliver(u, ['m10']);
  const p4 = await poll(u, cfg, 10);
  assert.equal(p4.logout.top, 1);
  assert.deepEqual(sorted(alerted(u)), sorted(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10']));
});

test('mailbox emptied, then emptied and refilled between two polls: only the genuinely new mail alerts', async () => {
  const u = 'empty';
  const cfg = await lab.writeConfig(u, { rules: RULES });
  await deliver(u, ['e1', 'e2', 'e3', 'e4']);
  await poll(u, cfg, 4);
  await lab.emptyMailbox(u);
  const p2 = await poll(u, cfg, 4);
  assert.equal(p2.logout.msgs, 0);
  // The short-circuit probe `UIDL n` rides with STAT in one write (the server pipelines), so it is asked before the
  // STAT says the mailbox is empty; no full UIDL, nothing else.
  assert.deepEqual(Object.keys(p2.rawlog.counts).sort(), ['QUIT', 'STAT', 'UIDL n'], 'an empty mailbox needs no full UIDL');
  assert.equal(p2.rawlog.counts['UIDL n'], 1);
  await deliver(u, ['e5', 'e6']);
  const p3 = await poll(u, cfg, 6);
  assert.equal(p3.logout.top, 2);
  // Both at once: everything old removed and new mail delivered before the next poll.
  await lab.emptyMailbox(u);
  await deliver(u, ['e7', 'e8', 'e9']);
  const p4 = await poll(u, cfg, 9);
  assert.equal(p4.logout.msgs, 3);
  assert.equal(p4.logout.top, 3, p4.logout.raw);
  assert.deepEqual(sorted(alerted(u)), sorted(['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9']));
});

test('idle poll: STAT short-circuit — after login only STAT, one UIDL n and QUIT, at most 100 bytes', async () => {
  const u = 'idle';
  const cfg = await lab.writeConfig(u, { rules: RULES });
  await deliver(u, Array.from({ length: 40 }, (_, i) => `i${i + 1}`));
  await poll(u, cfg, 40);
  const p2 = await poll(u, cfg, 40);
  // Dovecot's CAPA before login already lists TOP, UIDL and PIPELINING, so no CAPA is needed after it either.
  const shapes = p2.rawlog.exchanges.map((e) => e.shape);
  assert.deepEqual(shapes, ['STAT', 'UIDL n', 'QUIT'], `commands of the idle poll: ${p2.rawlog.exchanges.map((e) => e.command).join(', ')}`);
  assert.equal(p2.logout.top, 0);
  // Issue 8 target: the poll's own commands and replies after login at most 100 bytes (a full UIDL of 40 messages
  // alone would be about 800). Dovecot's in/out also count its "+OK Logged in." reply; the rawlog separates it.
  const own = p2.rawlog.inBytes + p2.rawlog.outBytes - p2.rawlog.loginReplyBytes;
  assert.ok(own <= 100, `idle poll: ${own} bytes after login: ${p2.rawlog.exchanges.map((e) => `${e.command} (+${e.replyBytes})`).join(', ')}`);
  assert.equal(p2.logout.in + p2.logout.out, own + p2.rawlog.loginReplyBytes, 'rawlog and Dovecot agree on the bytes');
});

test('a message is previewed once in its life: TOPs over many polls (new mail, deletions, idle polls) equal the messages ever delivered', async () => {
  const u = 'life';
  const cfg = await lab.writeConfig(u, { rules: RULES });
  let delivered = 0;
  const wave = async (n: number) => {
    const tags = Array.from({ length: n }, (_, i) => `l${delivered + i + 1}`);
    delivered += n;
    await deliver(u, tags);
  };
  await wave(5);
  await poll(u, cfg, delivered);
  await poll(u, cfg, delivered);
  await wave(3);
  await poll(u, cfg, delivered);
  await deleteViaPop3(u, [1, 2]);
  await poll(u, cfg, delivered);
  await wave(4);
  await deleteViaPop3(u, [3]);
  await poll(u, cfg, delivered);
  await poll(u, cfg, delivered);
  // The rawlog also holds the two sessions of the "other client" that deleted mail; leave them out.
  const sessions = (await lab.rawlog(u)).filter((s) => !s.counts['DELE n']);
  assert.equal(sessions.length, 6);
  const tops = sessions.reduce((a, s) => a + (s.counts['TOP n 0'] ?? 0), 0);
  assert.equal(tops, delivered, `TOP n 0 per poll: ${sessions.map((s) => s.counts['TOP n 0'] ?? 0).join(', ')}`);
  assert.equal(sessions.reduce((a, s) => a + (s.counts['RETR n'] ?? 0), 0), 0);
  assert.deepEqual(sorted(alerted(u)), sorted(Array.from({ length: delivered }, (_, i) => `l${i + 1}`)));
});
