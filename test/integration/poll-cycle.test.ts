// Foundation end-to-end: the real CLI against real Dovecot and Mosquitto — header-only polls, no repeats, restarts, existing policy, keep: false.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { startLab, minimalConfig, runCli, USER, type Lab } from '../support/lab.js';
import { makeMail } from '../support/maildir.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';

let lab: Lab;
let sub: Subscriber;

before(async () => {
  lab = await startLab();
  sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/alerts/#']);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

const alarm = (cam: number, id: string) => makeMail({ from: 'NVR <nvr@nvr.local>', to: 'alice@home.example', subject: `ALARM: Motion Detected Camera ${cam}`, messageId: `<${id}@nvr.local>`, body: 'motion\r\n' });
const news = (i: number) => makeMail({ from: 'News <news@shop.example>', to: 'alice@home.example', subject: `Deals ${i}`, body: 'x'.repeat(5000) });

async function resetMailbox(): Promise<void> {
  // Deleting through a real POP3 session would need the client; Maildir files can be removed directly between tests.
  const md = lab.dovecot.maildir(USER);
  for (const sub of ['new', 'cur']) for (const f of await readdir(path.join(md, sub))) await rm(path.join(md, sub, f));
}

async function once(cfg: string) {
  const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `once failed:\n${r.stderr}`);
  return r;
}

test('existing: process alerts present mail from headers only (retr=0); a second poll and a restart alert nothing', async () => {
  await resetMailbox();
  sub.clear();
  await lab.dovecot.deliverMany(USER, [alarm(1, 'a1'), news(1), alarm(2, 'a2'), news(2)]);
  const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'process', stateDir: './state-process' }), 'process.yaml');
  const before = (await lab.dovecot.settled()).length;

  const r1 = await once(cfg);
  const got = await sub.waitForCount(2, 10_000);
  assert.deepEqual(got.map((m) => m.topic).sort(), ['pop2mqtt/alerts/Camera 1', 'pop2mqtt/alerts/Camera 2']);
  const payload = got.find((m) => m.topic.endsWith('Camera 1'))!.json as Record<string, unknown>;
  for (const k of ['id', 'mailbox', 'rule', 'uid', 'from', 'to', 'subject', 'date', 'size']) assert.ok(k in payload, `alert has ${k}`);
  assert.equal(payload.mailbox, 'home');
  assert.equal(payload.rule, 'camera-motion');
  assert.equal(payload.camera, 'Camera 1');
  assert.equal(payload.event, 'Motion Detected');
  assert.match(r1.stderr, /poll.*messages=4.*new=4.*alerts=2/);
  // Nothing is to be deleted: QUIT went out without waiting for the PUBACKs, awaited after the session.
  assert.match(r1.stderr, / poll .*duration_ms=\d+ ack_wait_ms=\d+/);
  assert.doesNotMatch(r1.stderr, /deferred=/, 'every alert acknowledged within the poll');

  const sessions = await lab.dovecot.logoutLines({ atLeast: before + 1 });
  const s1 = sessions[before]!;
  assert.equal(s1.retr, 0, `header-only rules must not RETR: ${s1.raw}`);
  assert.equal(s1.top, 4, `one TOP per new message: ${s1.raw}`);

  // Second poll: nothing new, nothing alerted, no TOP.
  await once(cfg);
  // Restart is the same as a new process: `once` is a new process each time. A third run also alerts nothing.
  await once(cfg);
  const all = await lab.dovecot.logoutLines({ atLeast: before + 3 });
  assert.equal(all[before + 1]!.top, 0, all[before + 1]!.raw);
  assert.equal(all[before + 2]!.top, 0, all[before + 2]!.raw);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sub.messages.length, 2, 'no repeated alerts');

  // Same mail, same ids: the stable id is mailbox + UID + rule.
  const ids = got.map((m) => (m.json as { id: string }).id);
  assert.equal(new Set(ids).size, 2);
});

test('existing: skip marks present mail as seen; only mail arriving later alerts', async () => {
  await resetMailbox();
  sub.clear();
  await lab.dovecot.deliverMany(USER, [alarm(3, 'b1'), news(3)]);
  const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'skip', stateDir: './state-skip' }), 'skip.yaml');
  await once(cfg);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sub.messages.length, 0, 'nothing alerted on the first run with existing: skip');
  await lab.dovecot.deliver(USER, alarm(4, 'b2'));
  await once(cfg);
  const got = await sub.waitForCount(1, 10_000);
  assert.equal(got[0]!.topic, 'pop2mqtt/alerts/Camera 4');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sub.messages.length, 1);
});

test('keep: false deletes only alerted mail, after the broker acknowledged it', async () => {
  await resetMailbox();
  sub.clear();
  await lab.dovecot.deliverMany(USER, [alarm(5, 'c1'), news(5), alarm(6, 'c2'), news(6)]);
  const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'process', keep: false, stateDir: './state-delete' }), 'delete.yaml');
  const before = (await lab.dovecot.settled()).length;
  const r = await once(cfg);
  await sub.waitForCount(2, 10_000);
  const sessions = await lab.dovecot.logoutLines({ atLeast: before + 1 });
  assert.equal(sessions[before]!.del, 2, sessions[before]!.raw);
  // The acks were awaited inside the session, before DELE: none is left for after QUIT.
  assert.match(r.stderr, / poll .*deleted=2/);
  assert.doesNotMatch(r.stderr, /ack_wait_ms=/);
  const left = await lab.dovecot.messageFiles(USER);
  assert.equal(left.length, 2, 'the two newsletters stay');
  // Next poll: the remaining (non-matching) mail is neither alerted nor deleted.
  await once(cfg);
  assert.equal((await lab.dovecot.messageFiles(USER)).length, 2);
  assert.equal(sub.messages.length, 2);
});

test('a message whose headers cannot be parsed is logged and retried, never dropped', async () => {
  await resetMailbox();
  sub.clear();
  // A header block over the parser's limits (5,000 fields) cannot be parsed.
  const junk = Array.from({ length: 5000 }, (_, i) => `X-Junk-${i}: y`).join('\r\n');
  const huge = `From: nvr@nvr.local\r\nSubject: ALARM: Motion Detected Camera 7\r\n${junk}\r\n\r\nbody\r\n`;
  await lab.dovecot.deliverMany(USER, [huge, alarm(8, 'd1')]);
  const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'process', keep: false, stateDir: './state-bad' }), 'bad.yaml');
  const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.match(r.stderr, /could not be handled|retrying next poll/);
  await sub.waitForCount(1, 10_000);
  // The bad message is still on the server (not deleted), and is tried again next poll.
  const files = await lab.dovecot.messageFiles(USER);
  assert.equal(files.length, 1);
  const r2 = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.match(r2.stderr, /attempt=2/);
});

test('a mail with a 70 KB header line fails alone: once exits 0, the alarms behind it alert in the same poll; it is parked, never deleted', async () => {
  await resetMailbox();
  sub.clear();
  // The case (a 70 KB line: "line longer than 65536 bytes") and a 2 MB one, each with alarms after it.
  const long70k = `From: nvr@nvr.local\r\nSubject: ALARM: Motion Detected Camera 9\r\nX-Junk: ${'y'.repeat(70 * 1024)}\r\n\r\nbody\r\n`;
  const long2m = `From: nvr@nvr.local\r\nSubject: ALARM: Motion Detected Camera 19\r\nX-Junk: ${'z'.repeat(2_000_000)}\r\n\r\nbody\r\n`;
  await lab.dovecot.deliverMany(USER, [alarm(10, 'e0'), long70k, alarm(11, 'e1'), long2m, alarm(12, 'e2')]);
  const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'process', keep: false, stateDir: './state-poison' }), 'poison.yaml');
  const before = (await lab.dovecot.logoutLines()).length;
  const r1 = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r1.code, 0, `one bad message must not fail the poll:\n${r1.stderr}`);
  assert.equal((r1.stderr.match(/line longer than 65536 bytes/g) ?? []).length, 2, r1.stderr);
  assert.equal((r1.stderr.match(/giving up on a message/g) ?? []).length, 2, 'both bad mails parked at once');
  const got = await sub.waitForCount(3, 10_000);
  assert.deepEqual(got.map((m) => m.topic).sort(), ['pop2mqtt/alerts/Camera 10', 'pop2mqtt/alerts/Camera 11', 'pop2mqtt/alerts/Camera 12']);
  // One session did it all: every TOP, and the DELE of the three alerted mails.
  const [s1] = (await lab.dovecot.logoutLines({ atLeast: before + 1 })).slice(before);
  assert.equal(s1!.top, 5, s1!.raw);
  assert.equal(s1!.del, 3, s1!.raw);
  // The bad mails stay on the server for a person; the next poll leaves them alone (parked: no TOP, no DELE).
  assert.equal((await lab.dovecot.messageFiles(USER)).length, 2);
  const r2 = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r2.code, 0, r2.stderr);
  assert.doesNotMatch(r2.stderr, /ELIMIT/);
  const [s2] = (await lab.dovecot.logoutLines({ atLeast: before + 2 })).slice(before + 1);
  assert.equal(s2!.top, 0, s2!.raw);
  assert.equal(s2!.del, 0, s2!.raw);
  assert.equal((await lab.dovecot.messageFiles(USER)).length, 2);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sub.messages.length, 3, 'no repeated alerts');
});

test('an idle poll costs under 100 bytes from the server after login (STAT short-circuit, no CAPA after login)', async () => {
  await resetMailbox();
  await lab.dovecot.deliverMany(USER, [alarm(12, 'f1'), news(12)]);
  const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'skip', stateDir: './state-idle' }), 'idle.yaml');
  await once(cfg);
  const before = (await lab.dovecot.settled()).length;
  await once(cfg);
  const [idle] = (await lab.dovecot.logoutLines({ atLeast: before + 1 })).slice(before);
  assert.ok(idle);
  assert.equal(idle.top, 0, idle.raw);
  assert.ok(idle.out <= 100, `bytes after login: ${idle.raw}`);
});
