// What POP3 clients remember between sessions lives in a Pop3Memory the caller owns: sessions are recalled, forgotten and bounded, and two memories share nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Memory } from '../../src/pop3/memory.js';

const peer = (fp: string) => ({ subject: 'CN=x', issuer: 'CN=ca', validFrom: '', validTo: '', fingerprint256: fp });
const entry = (fp: string) => ({ peer: peer(fp), protocol: 'TLSv1.3', chain: { capabilities: ['TOP', 'UIDL'] } });

test('a remembered session is recalled by its bytes, and forgotten', () => {
  const m = new Pop3Memory();
  const s = Buffer.from('ticket-1');
  assert.equal(m.recall(s), undefined);
  assert.equal(m.recall(undefined), undefined);
  m.remember(s, entry('AA'));
  assert.equal(m.recall(Buffer.from('ticket-1'))?.peer.fingerprint256, 'AA');
  m.forget(s);
  assert.equal(m.recall(s), undefined);
});

test('at most 256 sessions are kept, the oldest dropped first', () => {
  const m = new Pop3Memory();
  for (let i = 0; i < 300; i++) m.remember(Buffer.from(`t${i}`), entry(String(i)));
  assert.equal(m.recall(Buffer.from('t0')), undefined);
  assert.equal(m.recall(Buffer.from('t43')), undefined);
  assert.equal(m.recall(Buffer.from('t44'))?.peer.fingerprint256, '44');
  assert.equal(m.recall(Buffer.from('t299'))?.peer.fingerprint256, '299');
});

test('two memories share nothing: sessions, lean-hello refusals, notes', () => {
  const notes = { recall: () => ({ refusedMechanisms: ['plain' as const] }), note: () => {} };
  const a = new Pop3Memory({ notes });
  const b = new Pop3Memory();
  a.remember(Buffer.from('t'), entry('AA'));
  a.refuseLean('server');
  assert.equal(b.recall(Buffer.from('t')), undefined);
  assert.equal(b.refusedLean('server'), false);
  assert.equal(a.refusedLean('server'), true);
  assert.equal(a.notes, notes);
  assert.equal(b.notes, undefined);
});
