// Proves the POP3 reply decoder hands out whole runs of data lines as one piece (not one Buffer per line) while unstuffing and limits stay exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyReader, type DecodedReply, type ReplyExpectation } from '../../src/pop3/reader.js';

function reader(exps: ReplyExpectation[], limits = { maxLineBytes: 1000, maxReplyBytes: 1 << 26 }) {
  const replies: DecodedReply[] = [];
  const errors: string[] = [];
  let lines = 0;
  const r = new ReplyReader(limits, {
    expectation: () => exps[0],
    onReply: (rep) => {
      exps.shift();
      replies.push(rep);
    },
    onError: (e) => errors.push(e.code),
    onLine: () => lines++,
  });
  return { r, replies, errors, lines: () => lines };
}

const body = (n: number) => Array.from({ length: n }, (_, i) => `line ${String(i).padStart(5, '0')} of a base64-sized body, 78 octets long ........................`).join('\r\n') + '\r\n';

test('a streamed reply read in one chunk arrives as one piece per run of plain lines', { timeout: 5000 }, () => {
  const pieces: Buffer[] = [];
  const text = body(2000); // about 160 kB
  const { r, replies, errors, lines } = reader([{ multiline: true, onData: (c) => pieces.push(Buffer.from(c)) }]);
  r.push(Buffer.from(`+OK message follows\r\n${text}.\r\n`));
  assert.deepEqual(errors, []);
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.dataBytes, text.length);
  assert.equal(pieces.length, 1, 'one piece, not one per line');
  assert.equal(Buffer.concat(pieces).toString(), text);
  // The command deadline still hears of progress: status line, the run, the terminator.
  assert.ok(lines() >= 3 && lines() <= 4, `onLine called ${lines()} times`);
});

test('runs break only where a line needs work (dot-stuffing, bare LF, a line split across reads)', { timeout: 5000 }, () => {
  const pieces: Buffer[] = [];
  const { r, replies, errors } = reader([{ multiline: true, onData: (c) => pieces.push(Buffer.from(c)) }]);
  const part1 = `+OK\r\n${body(100)}..stuffed\r\n${body(100)}bare\n${body(50)}split-acr`;
  const part2 = `oss-reads\r\n${body(100)}.\r\n`;
  r.push(Buffer.from(part1));
  r.push(Buffer.from(part2));
  assert.deepEqual(errors, []);
  assert.equal(replies.length, 1);
  const expected = `${body(100)}.stuffed\r\n${body(100)}bare\r\n${body(50)}split-across-reads\r\n${body(100)}`;
  assert.equal(Buffer.concat(pieces).toString(), expected);
  // 100 | .stuffed | 100 | bare + CRLF | 50 (end of read 1) | split line | 100: at most 8 pieces for 453 lines.
  assert.ok(pieces.length <= 8, `${pieces.length} pieces`);
});

test('a buffered reply over maxReplyBytes fails alone even when it comes in a single run', { timeout: 5000 }, () => {
  const text = body(100);
  const over = reader([{ multiline: true }, { multiline: false }], { maxLineBytes: 1000, maxReplyBytes: text.length - 1 });
  over.r.push(Buffer.from(`+OK\r\n${text}.\r\n+OK next\r\n`));
  assert.deepEqual(over.errors, []);
  assert.equal(over.replies.length, 2);
  assert.equal(over.replies[0]!.overLimit, `reply larger than ${text.length - 1} bytes`);
  assert.equal(over.replies[0]!.data, undefined, 'nothing kept');
  assert.equal(over.replies[0]!.dataBytes, text.length, 'read to its end');
  assert.equal(over.replies[1]!.text, 'next');
  const fits = reader([{ multiline: true }], { maxLineBytes: 1000, maxReplyBytes: text.length });
  fits.r.push(Buffer.from(`+OK\r\n${text}.\r\n`));
  assert.deepEqual(fits.errors, []);
  assert.equal(fits.replies[0]!.data!.toString(), text);
});

test('a line over maxLineBytes inside a run fails that reply alone: onData gets nothing from it on, the next reply decodes', { timeout: 5000 }, () => {
  const got: string[] = [];
  const { r, errors, replies } = reader([{ multiline: true, onData: (c) => got.push(c.toString()) }, { multiline: false }], { maxLineBytes: 100, maxReplyBytes: 1 << 20 });
  r.push(Buffer.from(`+OK\r\nshort\r\nshort\r\n${'x'.repeat(101)}\r\nshort\r\n.\r\n-ERR next\r\n`));
  assert.deepEqual(errors, []);
  assert.equal(got.join(''), 'short\r\nshort\r\n');
  assert.equal(replies[0]!.overLimit, 'line longer than 100 bytes');
  assert.equal(replies[1]!.status, '-ERR');
});
