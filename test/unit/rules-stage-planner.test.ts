// Tests of rules/stage-planner.ts: which stage (TOP n 0, TOP n N, RETR) each message is fetched at, cheapest first, each stage once, failed messages left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules, type MessageData, type RuleConfig } from '../../src/rules/index.js';
import { fetchInStages, needsStage, FETCH_STAGES, type FetchStage } from '../../src/rules/stage-planner.js';
import { parseHeaders, loadHeaderDecoder } from '../../src/message/headers.js';
import { firstBodyLines } from '../../src/message/preview.js';
import { parseMessage } from '../../src/message/body.js';
import { basicHeaders, eml } from '../fixtures/mail/messages.js';

const NOW = new Date('2025-07-01T09:00:00Z');

function rules(...r: unknown[]) {
  return compileRules(r as RuleConfig[], { trustedAuthservIds: [] });
}

const SUBJECT_RULE = { name: 'alarm', when: { subject: { glob: 'ALARM*' } }, publish: [] };
const PREVIEW_RULE = { name: 'zone', when: { all: [{ subject: { contains: 'PREVIEW' } }, { preview: { lines: 2, contains: 'zone 3' } }] }, publish: [] };
const BODY_RULE = { name: 'door', when: { all: [{ subject: { contains: 'BODY' } }, { body: { contains: 'door' } }] }, publish: [] };

interface Item { raw: Buffer; data: MessageData; failed?: boolean }

function item(uid: string, subject: string, body = 'Motion in zone 3\r\nfront door\r\n'): Item {
  const raw = eml(basicHeaders({ Subject: subject }), body);
  return { raw, data: { mailbox: 'mb', uid, msgNum: Number(uid.replace(/\D/g, '')) || 1, size: raw.length } };
}

/** What the poller's fetches add, taken from the whole message (as test-rule does). */
async function fill(it: Item, stage: FetchStage, lines: number): Promise<void> {
  if (stage === 'headers') it.data.headers = parseHeaders(it.raw);
  else if (stage === 'preview') {
    it.data.headers ??= parseHeaders(it.raw);
    it.data.preview = { lines, text: firstBodyLines(it.raw, lines) };
  } else {
    it.data.full = await parseMessage(it.raw);
    it.data.headers ??= it.data.full.headers;
  }
}

test('the stages, cheapest first', () => {
  assert.deepEqual(FETCH_STAGES, ['headers', 'preview', 'full']);
});

test('needsStage: a size rule needs no fetch; a header, preview or body rule needs exactly its stage', async () => {
  await loadHeaderDecoder();
  const at = (r: unknown, it: Item) => FETCH_STAGES.filter((s) => needsStage(rules(r), it.data, s, NOW));
  assert.deepEqual(at({ name: 's', when: { size: { over: 10 } }, publish: [] }, item('u1', 'x')), []);
  assert.deepEqual(at(SUBJECT_RULE, item('u1', 'ALARM 1')), ['headers']);
  assert.deepEqual(at({ name: 'p', when: { preview: { lines: 2, contains: 'zone' } }, publish: [] }, item('u1', 'x')), ['preview']);
  assert.deepEqual(at({ name: 'b', when: { body: { contains: 'door' } }, publish: [] }, item('u1', 'x')), ['full']);
  // Publishing needs the headers even when the conditions need nothing.
  assert.deepEqual(at({ name: 's', when: { size: { over: 10 } } }, item('u1', 'x')), ['headers']);
});

test('needsStage: once the data is there the message is decided; over max_message_size no RETR is planned', async () => {
  await loadHeaderDecoder();
  const rs = rules(SUBJECT_RULE, { name: 'b', when: { body: { contains: 'door' } }, publish: [] });
  const it = item('u1', 'ALARM 1');
  await fill(it, 'headers', 0);
  assert.equal(needsStage(rs, it.data, 'headers', NOW), false);
  assert.equal(needsStage(rs, it.data, 'full', NOW), true);
  it.data.oversize = true;
  assert.equal(needsStage(rs, it.data, 'full', NOW), false);
  assert.equal(rs.evaluate(it.data, NOW).decided, true, 'oversize decides the body rule (false)');
});

test('fetchInStages: each message climbs only as far as a rule that can still match needs; each stage runs once, in order', async () => {
  await loadHeaderDecoder();
  const rs = rules(SUBJECT_RULE, PREVIEW_RULE, BODY_RULE);
  const items = [item('u1', 'ALARM 1'), item('u2', 'BODY check'), item('u3', 'PREVIEW check'), item('u4', 'nothing')];
  const calls: string[] = [];
  await fetchInStages(rs, items, { data: (it) => it.data, now: NOW }, async (stage, need) => {
    calls.push(`${stage}:${need.map((it) => it.data.uid).join(',')}`);
    for (const it of need) await fill(it, stage, rs.maxPreviewLines);
  });
  assert.deepEqual(calls, ['headers:u1,u2,u3,u4', 'preview:u3', 'full:u2']);
  for (const it of items) assert.equal(rs.evaluate(it.data, NOW).decided, true, it.data.uid);
  assert.deepEqual(items.map((it) => rs.evaluate(it.data, NOW).matched.map((m) => m.rule.name)), [['alarm'], ['door'], ['zone'], []]);
});

test('fetchInStages: a message decided by LIST size and UIDL is never fetched', async () => {
  const rs = rules({ name: 'big', when: { size: { over: 1_000_000 } }, publish: [] });
  let called = 0;
  await fetchInStages(rs, [item('u1', 'x')], { data: (it) => it.data, now: NOW }, async () => {
    called++;
  });
  assert.equal(called, 0);
});

test('fetchInStages: a message failed at one stage (skip) is left out of the later ones', async () => {
  await loadHeaderDecoder();
  const rs = rules(SUBJECT_RULE, { name: 'b', when: { body: { contains: 'door' } }, publish: [] });
  const items = [item('u1', 'ALARM 1'), item('u2', 'ALARM 2')];
  const calls: string[] = [];
  const run = (skip?: (it: Item) => boolean) => fetchInStages(rs, items, { data: (it) => it.data, now: NOW, ...(skip ? { skip } : {}) }, async (stage, need) => {
    calls.push(`${stage}:${need.map((it) => it.data.uid).join(',')}`);
    for (const it of need) {
      if (stage === 'headers' && it.data.uid === 'u2') it.failed = true; // its TOP failed: no headers
      else await fill(it, stage, 0);
    }
  });
  await run((it) => it.failed === true);
  assert.deepEqual(calls, ['headers:u1,u2', 'full:u1']);
  // Without skip the failed message would go on to RETR: the option is what keeps it out.
  calls.length = 0;
  for (const it of items) it.data = { ...it.data, headers: undefined, full: undefined } as MessageData;
  delete items[1]!.failed;
  await run();
  assert.deepEqual(calls, ['headers:u1,u2', 'full:u1,u2']);
});

test('fetchInStages: a fetch that adds nothing (RETR refused over the size limit) ends the loop; nothing is asked twice', async () => {
  await loadHeaderDecoder();
  const rs = rules({ name: 'b', when: { body: { contains: 'door' } }, publish: [] });
  const it = item('u1', 'x');
  const calls: FetchStage[] = [];
  await fetchInStages(rs, [it], { data: (i) => i.data, now: NOW }, async (stage, need) => {
    calls.push(stage);
    for (const i of need) i.data.oversize = true;
  });
  assert.deepEqual(calls, ['full']);
  assert.equal(rs.evaluate(it.data, NOW).decided, true);
});
