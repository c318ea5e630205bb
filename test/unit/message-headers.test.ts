// Tests of the header-block parser: unfolding, RFC 2047, 8-bit headers, addresses, dates, limits, garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHeaders, parseAddressList, parseMailDate, formatAddress, loadHeaderDecoder, findHeaderEnd } from '../../src/message/headers.js';
import { splitHeaderBody } from '../../src/message/preview.js';
import { MessageParseError } from '../../src/message/errors.js';

// Header decoding (libmime) is loaded on demand, as the poller does before parsing new mail.
await loadHeaderDecoder();

const H = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'), 'utf8');

test('unfolds, decodes RFC 2047 across folded lines, keeps all instances in order', { timeout: 5000 }, () => {
  const h = parseHeaders(H('Subject: =?UTF-8?Q?Bewegung_in?=\n =?UTF-8?B?IFpvbmUgw6Q=?=\nX-A: one\nx-a: two\nReceived: a\n\tb\n\nbody line\n'));
  assert.equal(h.subject, 'Bewegung in Zone ä');
  assert.deepEqual(h.get('X-A'), ['one', 'two']);
  assert.equal(h.first('x-A'), 'one');
  assert.equal(h.has('RECEIVED'), true);
  assert.equal(h.has('body line'), false);
  assert.deepEqual(h.get('received'), ['a\tb']);
  assert.deepEqual(h.names(), ['Subject', 'X-A', 'Received']);
  assert.equal(h.raw.toString().includes('body line'), false);
});

test('end of the header block: the first empty line, CRLF or LF; a leading empty line means no headers', { timeout: 5000 }, () => {
  const split = (s: string) => {
    const { header, body } = splitHeaderBody(Buffer.from(s, 'latin1'));
    return [header.toString('latin1'), body.toString('latin1')];
  };
  assert.deepEqual(split('A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore'), ['A: 1\r\nB: 2\r\n', 'body\r\n\r\nmore']);
  assert.deepEqual(split('A: 1\nB: 2\n\nbody\n\nmore'), ['A: 1\nB: 2\n', 'body\n\nmore'], 'LF only');
  assert.deepEqual(split('A: 1\n\nbody\r\n\r\nmore'), ['A: 1\n', 'body\r\n\r\nmore'], 'the first empty line wins, whatever its line end');
  assert.deepEqual(split('A: 1\n\r\nbody'), ['A: 1\n', 'body'], 'mixed line ends');
  assert.deepEqual(split('\r\nA: 1\r\n\r\nbody'), ['', 'A: 1\r\n\r\nbody'], 'leading empty line (CRLF): empty header block');
  assert.deepEqual(split('\nA: 1\n\nbody'), ['', 'A: 1\n\nbody'], 'leading empty line (LF): empty header block');
  assert.deepEqual(split('A: 1\r\nB: 2\r\n'), ['A: 1\r\nB: 2\r\n', ''], 'no empty line: all header');
  assert.equal(findHeaderEnd(Buffer.from('A: 1\r\nB: 2')), null);
  assert.deepEqual(findHeaderEnd(Buffer.from('\r\n\r\nbody')), { headerEnd: 0, bodyStart: 2 });
  assert.deepEqual(findHeaderEnd(Buffer.from('\nX: 1\n\nbody'), false), { headerEnd: 6, bodyStart: 7 },
    'a window into the middle of a message: a line end at offset 0 ends a header line');
  assert.deepEqual(parseHeaders(Buffer.from('\r\nSubject: in the body\r\n\r\n')).names(), [], 'parseHeaders agrees');
  assert.deepEqual(parseHeaders(Buffer.from('Subject: s\n\nX-Body: b\n')).names(), ['Subject']);
});

test('LF-only line ends, raw 8-bit UTF-8 and Latin-1 headers', { timeout: 5000 }, () => {
  const h = parseHeaders(Buffer.from('Subject: Grüße\nX-L: ', 'utf8'));
  assert.equal(h.subject, 'Grüße');
  const latin = Buffer.concat([Buffer.from('Subject: Gr'), Buffer.from([0xfc]), Buffer.from('n\r\n\r\n')]);
  assert.equal(parseHeaders(latin).subject, 'Grün');
});

test('fields are found by bytes and decoded when asked, line by line, as a full decode would', { timeout: 5000 }, () => {
  const block = Buffer.concat([
    Buffer.from('From mbox-line 12:00\r\nSubject\xa0: nbsp before the colon\r\n', 'latin1'), // String.trimEnd() drops U+00A0
    Buffer.from('X-\u00dc: eight-bit name\r\nX-Mixed: caf', 'utf8'), Buffer.from([0xe9]), // a Latin-1 line, then a UTF-8 one
    Buffer.from('\r\n caf\u00e9 =?utf-8?q?=C3=A9?=\r\nX-Cr: a\rb\r\nx-cr: second\n\tfolded\r\n\r\nBody: no\r\n', 'utf8'),
  ]);
  const h = parseHeaders(block);
  assert.deepEqual(h.names(), ['Subject', 'X-Mixed', 'X-Cr']);
  assert.equal(h.subject, 'nbsp before the colon');
  assert.deepEqual(h.getRaw('X-MIXED'), ['caf\u00e9 caf\u00e9 =?utf-8?q?=C3=A9?=']);
  assert.deepEqual(h.get('x-mixed'), ['caf\u00e9 caf\u00e9 \u00e9']);
  assert.deepEqual(h.get('x-cr'), ['a\rb', 'second\tfolded'], 'a CR that ends no line is data; LF-only lines unfold too');
  assert.equal(h.has('x-\u00fc'), false);
  assert.equal(h.raw.length, block.indexOf('\r\n\r\n') + 2);
});

test('broken encoded words and unknown charsets never throw', { timeout: 5000 }, () => {
  const h = parseHeaders(H('Subject: =?x-unknown?Q?abc?= =?UTF-8?B?####?= =?utf-8?q?ok?=\n\n'));
  assert.equal(typeof h.subject, 'string');
  assert.match(h.subject, /ok/);
});

test('addresses: display names, quoted strings, comments, groups, encoded names cannot inject', { timeout: 5000 }, () => {
  const list = parseAddressList('"Doe, John" <john@Example.COM>, plain@x.org (Plain Name), team: a@t.io, b@t.io;, =?utf-8?q?admin=40bank.com?= <evil@attacker.net>');
  assert.deepEqual(list.map((a) => [a.name, a.address, a.localpart, a.domain]), [
    ['Doe, John', 'john@Example.COM', 'john', 'example.com'],
    ['Plain Name', 'plain@x.org', 'plain', 'x.org'],
    ['', 'a@t.io', 'a', 't.io'],
    ['', 'b@t.io', 'b', 't.io'],
    ['admin@bank.com', 'evil@attacker.net', 'evil', 'attacker.net'],
  ]);
  assert.deepEqual(parseAddressList('undisclosed-recipients:;'), []);
  assert.equal(formatAddress(list[0]!), 'Doe, John <john@Example.COM>');
  assert.equal(formatAddress(list[2]!), 'a@t.io');
  const h = parseHeaders(H('From: NVR <nvr@nvr.local>\nReply-To: r@x\nSender: s@y\nCc: c@z\nTo: t@w\n\n'));
  assert.equal(h.from[0]!.address, 'nvr@nvr.local');
  assert.equal(h.replyTo[0]!.address, 'r@x');
  assert.equal(h.sender[0]!.domain, 'y');
  assert.equal(h.cc[0]!.localpart, 'c');
  assert.equal(h.to[0]!.address, 't@w');
});

test('dates: RFC 5322 with obsolete forms; unparseable stays undefined, never now', { timeout: 5000 }, () => {
  assert.equal(parseMailDate('Tue, 1 Jul 2003 10:52:37 +0200')!.toISOString(), '2003-07-01T08:52:37.000Z');
  assert.equal(parseMailDate('1 Jul 03 10:52 GMT')!.toISOString(), '2003-07-01T10:52:00.000Z');
  assert.equal(parseMailDate('Tue, 01 Jul 2003 10:52:37 EST (Eastern)')!.toISOString(), '2003-07-01T15:52:37.000Z');
  assert.equal(parseMailDate('Thu, 13 Feb 1969 23:32:54 -0330')!.toISOString(), '1969-02-14T03:02:54.000Z');
  assert.equal(parseMailDate('2025-01-02T03:04:05Z')!.toISOString(), '2025-01-02T03:04:05.000Z');
  for (const bad of ['', 'yesterday', '31 Feb 2024 10:00:00 +0000', '1 Jul 2003 25:00:00 +0000', 'Tue, 1 Foo 2003 10:00 +0000', '99999999999']) {
    assert.equal(parseMailDate(bad), undefined, bad);
  }
  const h = parseHeaders(H('Date: not a date\nSubject: x\n\n'));
  assert.equal(h.date, undefined);
  assert.equal(h.dateRaw, 'not a date');
  assert.equal(parseHeaders(H('Subject: x\n\n')).date, undefined);
});

test('message-id kept raw; missing subject is empty string', { timeout: 5000 }, () => {
  const h = parseHeaders(H('Message-ID:  <a.b@c>  \n\n'));
  assert.equal(h.messageId, '<a.b@c>');
  assert.equal(h.subject, '');
  assert.equal(h.from.length, 0);
});

test('limits: too large, too many headers; garbage throws MessageParseError with a code', { timeout: 5000 }, () => {
  assert.throws(() => parseHeaders(Buffer.from('Subject: ' + 'x'.repeat(2000) + '\r\n\r\n'), { maxBytes: 1000 }), (e: unknown) => e instanceof MessageParseError && e.code === 'HEADER_TOO_LARGE');
  const many = Array.from({ length: 20 }, (_, i) => `X-${i}: v`).join('\r\n') + '\r\n\r\n';
  assert.throws(() => parseHeaders(Buffer.from(many), { maxHeaders: 10 }), (e: unknown) => e instanceof MessageParseError && e.code === 'TOO_MANY_HEADERS');
  assert.equal(parseHeaders(Buffer.from(many), { maxHeaders: 20 }).names().length, 20);
  assert.throws(() => parseHeaders(Buffer.from([0, 1, 2, 3, 0xff, 0x0a, 0x80, 0x81])), (e: unknown) => e instanceof MessageParseError && e.code === 'MALFORMED_HEADERS');
  // empty header block is valid and empty
  assert.deepEqual(parseHeaders(Buffer.from('\r\nbody')).names(), []);
  // junk lines among good ones are skipped
  assert.equal(parseHeaders(Buffer.from('garbage line\r\nSubject: ok\r\n\r\n')).subject, 'ok');
});

test('hostile header values parse in bounded time', { timeout: 10000 }, () => {
  const nasty = 'Subject: ' + '=?'.repeat(30000) + '\r\nFrom: ' + '<'.repeat(20000) + '@'.repeat(20000) + '\r\nTo: ' + '"'.repeat(30001) + '\r\n\r\n';
  const t0 = Date.now();
  const h = parseHeaders(Buffer.from(nasty));
  assert.equal(typeof h.subject, 'string');
  assert.ok(Array.isArray(h.from));
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
});

test('field names: white space before the colon is trimmed; a name with a space, control or 8-bit byte is no field', { timeout: 5000 }, () => {
  const block = Buffer.concat([
    Buffer.from('From sender@example.org Mon Jan  1 00:00:00 2024\r\nSubject \t: spaced\r\nBad Name: x\r\nX-Ctl\x01: y\r\nK\x0b: vt\r\n', 'latin1'),
    Buffer.from('Stray \r\n: colon on the next line\r\nX-Ü: 8-bit\r\nX-B:\r\n  folded\r\n', 'latin1'),
  ]);
  const h = parseHeaders(block);
  assert.deepEqual(h.names(), ['Subject', 'K', 'X-B']);
  assert.equal(h.subject, 'spaced');
  assert.equal(h.first('k'), 'vt');
  assert.deepEqual(h.getRaw('x-b'), ['folded']);
  assert.equal(h.has('bad name'), false);
  assert.equal(h.has('stray'), false);
});
