// Unit tests of bridge request parsing: malformed input yields an error result, never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BRIDGE_COMMANDS, makeResponse, parseRequest } from '../../src/mqtt/requests.js';

const b = (s: string) => Buffer.from(s, 'utf8');

test('poll: empty payload polls everything; {"mailbox"} one mailbox; transaction kept', () => {
  assert.deepEqual(parseRequest('poll', b('')), { ok: true, cmd: 'poll' });
  assert.deepEqual(parseRequest('poll', b('  \n')), { ok: true, cmd: 'poll' });
  assert.deepEqual(parseRequest('poll', b('{"mailbox":"nvr","transaction":"t1"}')), { ok: true, cmd: 'poll', mailbox: 'nvr', transaction: 't1' });
  assert.deepEqual(parseRequest('poll', b('{}')), { ok: true, cmd: 'poll', mailbox: undefined, transaction: undefined });
});

test('malformed or wrongly typed JSON gives an error result', () => {
  const bad = parseRequest('poll', b('{"mailbox":'));
  assert.equal(bad.ok, false);
  assert.match((bad as { error: string }).error, /malformed JSON/);
  assert.equal(parseRequest('status', b('[1,2]')).ok, false);
  assert.equal(parseRequest('reload', b('"x"')).ok, false);
  const typed = parseRequest('poll', b('{"mailbox":5,"transaction":7}'));
  assert.equal(typed.ok, false);
  assert.equal(typed.transaction, 7, 'transaction echoed even on error');
});

test('test_rule: raw message, JSON {"message"}, empty and malformed', () => {
  const raw = b('From: cam@x\r\nSubject: Motion\r\n\r\nbody\r\n');
  const r1 = parseRequest('test_rule', raw);
  assert.equal(r1.ok, true);
  assert.deepEqual((r1 as { message: Buffer }).message, raw);
  const r2 = parseRequest('test_rule', b(JSON.stringify({ message: 'Subject: hi\r\n\r\n', transaction: 9 })));
  assert.equal(r2.ok, true);
  assert.equal((r2 as { message: Buffer }).message.toString(), 'Subject: hi\r\n\r\n');
  assert.equal(r2.transaction, 9);
  assert.equal(parseRequest('test_rule', b('')).ok, false);
  assert.equal(parseRequest('test_rule', b('{not json')).ok, false);
  assert.equal(parseRequest('test_rule', b('{"message":""}')).ok, false);
});

test('parseRequest never throws on arbitrary bytes', () => {
  fc.assert(fc.property(fc.constantFrom(...BRIDGE_COMMANDS), fc.uint8Array({ maxLength: 200 }), (cmd, bytes) => {
    const r = parseRequest(cmd, Buffer.from(bytes));
    return typeof r.ok === 'boolean';
  }));
});

test('makeResponse: envelope shape, transaction only when given', () => {
  assert.deepEqual(makeResponse({ data: { a: 1 } }), { status: 'ok', data: { a: 1 } });
  assert.deepEqual(makeResponse({ error: 'boom' }, 'x'), { status: 'error', data: {}, error: 'boom', transaction: 'x' });
  assert.deepEqual(makeResponse({ data: undefined }, 0), { status: 'ok', data: {}, transaction: 0 });
});
