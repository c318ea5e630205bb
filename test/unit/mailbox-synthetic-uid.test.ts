// Tests of the stand-in UIDs for servers without UIDL: what they depend on, and that ids saved by earlier versions still match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { syntheticUid } from '../../src/mailbox/synthetic-uid.js';

const h1 = Buffer.from('Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: cam@x\r\nSubject: one\r\n\r\n');

test('syntheticUid: stable, depends on Message-ID, Date, From and size only, folding-insensitive', () => {
  const h2 = Buffer.from('Subject: two\r\nFrom: cam@x\r\nDate: Mon, 1 Jan 2024\r\n 00:00:00 +0000\r\nMessage-ID: <a@b>\r\nX-Other: 1\r\n\r\n');
  const u = syntheticUid(h1, 100);
  assert.match(u, /^syn-[0-9a-f]{40}$/);
  assert.ok(u.length <= 70);
  assert.equal(syntheticUid(h1, 100), u);
  assert.equal(syntheticUid(h2, 100), u, 'other headers, order and folding do not matter');
  assert.notEqual(syntheticUid(h1, 101), u, 'size matters');
  assert.notEqual(syntheticUid(Buffer.from(h1.toString().replace('<a@b>', '<c@b>')), 100), u);
  assert.notEqual(syntheticUid(Buffer.from(h1.toString().replace('cam@x', 'cam@y')), 100), u);
  assert.notEqual(syntheticUid(Buffer.from(h1.toString().replace('00:00:00', '00:00:01')), 100), u);
  // Body text after the header block is ignored, and only the first instance of a header counts.
  assert.equal(syntheticUid(Buffer.concat([h1, Buffer.from('Message-ID: <z@z>\r\n')]), 100), u);
  assert.equal(syntheticUid(Buffer.from(h1.toString().replace('Subject: one', 'Message-ID: <z@z>')), 100), u);
  assert.equal(syntheticUid(Buffer.from(h1.toString().replace(/\r\n/g, '\n')), 100), u, 'LF-only line ends');
});

test('syntheticUid: the ids state files already hold (computed by the pop3/ version) are unchanged', () => {
  assert.equal(syntheticUid(h1, 7), 'syn-500d9d085eb89d04961ce780c6872d1c4936b457');
  assert.equal(syntheticUid(Buffer.from('From: =?UTF-8?B?R3LDvMOfZQ==?= <a@b>\nDate: x\n\n'), 7), 'syn-368c7da8ff2d6037dcde5cf846cce0a41c4fdbe7');
  assert.equal(syntheticUid(Buffer.from('From: Grüße <a@b>\r\nMessage-Id:   <x@y>  \r\n\r\n', 'utf8'), 7), 'syn-b3c426e0fd2b9afca19f85d92a2e426b101ed5ef');
});

test('syntheticUid never throws: no fields, junk, a leading empty line (no headers), a huge block', () => {
  const none = syntheticUid(Buffer.from('Subject: s\r\n\r\n'), 7);
  assert.equal(syntheticUid(Buffer.from('no headers here at all\r\n\r\n'), 7), none);
  assert.equal(syntheticUid(Buffer.from('\r\nFrom: body@x\r\nMessage-ID: <b@x>\r\n\r\n'), 7), none, 'after a leading empty line it is all body');
  const many = Buffer.from('X-A: 1\r\n'.repeat(5000) + 'From: cam@x\r\n\r\n');
  assert.match(syntheticUid(many, 7), /^syn-[0-9a-f]{40}$/);
  assert.notEqual(syntheticUid(many, 7), none);
});
