// Proves the POP3 reply decoder gives the same result however the bytes are split, and enforces its limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplyReader, type ReplyExpectation } from '../../src/pop3/reader.js';
import { Pop3Error } from '../../src/pop3/errors.js';

interface Out {
  status: string;
  text: string;
  data: string | null; // latin1 of buffered data, null for single-line
  overLimit?: string; // only when the reply broke a limit
}

interface Run {
  replies: Out[];
  error: string | null;
}

const BIG = { maxLineBytes: 64 * 1024, maxReplyBytes: 64 * 1024 * 1024 };

function decode(chunks: Buffer[], expectations: ReplyExpectation[], limits = BIG): Run {
  const queue = [...expectations];
  const run: Run = { replies: [], error: null };
  const reader = new ReplyReader(limits, {
    expectation: () => queue[0],
    onReply: (r) => {
      queue.shift();
      run.replies.push({ status: r.status, text: r.text, data: r.data ? r.data.toString('latin1') : null, ...(r.overLimit ? { overLimit: r.overLimit } : {}) });
    },
    onError: (e) => {
      assert.equal(run.error, null, 'onError called twice');
      run.error = e.code;
    },
  });
  for (const c of chunks) reader.push(c);
  return run;
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

const single: ReplyExpectation = { multiline: false };
const multi: ReplyExpectation = { multiline: true };

/** Decode unsplit, then at every single split point, every pair of split points (short inputs) and byte by byte. */
function assertSplitInvariant(input: string | Buffer, exps: ReplyExpectation[], expected: Run, limits = BIG): void {
  const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  assert.deepEqual(decode([buf], exps, limits), expected, 'unsplit');
  for (let i = 0; i <= buf.length; i++) {
    assert.deepEqual(decode(splitAt(buf, [i]), exps, limits), expected, `split at ${i}`);
  }
  if (buf.length <= 80) {
    for (let i = 1; i < buf.length; i++) {
      for (let j = i; j < buf.length; j++) {
        assert.deepEqual(decode(splitAt(buf, [i, j]), exps, limits), expected, `split at ${i},${j}`);
      }
    }
  }
  const bytes = [...buf].map((b) => Buffer.from([b]));
  assert.deepEqual(decode(bytes, exps, limits), expected, 'byte by byte');
}

test('single-line +OK and -ERR replies, split anywhere', () => {
  assertSplitInvariant('+OK 2 320\r\n', [single], { replies: [{ status: '+OK', text: '2 320', data: null }], error: null });
  assertSplitInvariant('-ERR [IN-USE] locked\r\n', [single], {
    replies: [{ status: '-ERR', text: '[IN-USE] locked', data: null }],
    error: null,
  });
  assertSplitInvariant('+OK\r\n', [single], { replies: [{ status: '+OK', text: '', data: null }], error: null });
});

test('"-ERR" to a multi-line command is single-line', () => {
  assertSplitInvariant('-ERR no such message\r\n+OK next\r\n', [multi, single], {
    replies: [
      { status: '-ERR', text: 'no such message', data: null },
      { status: '+OK', text: 'next', data: null },
    ],
    error: null,
  });
});

test('multi-line reply with dot-stuffing, split anywhere (including between the two dots and inside the terminator)', () => {
  assertSplitInvariant('+OK 3 octets\r\nline1\r\n..dotted\r\n...\r\n..\r\n.x\r\n\r\n.\r\n', [multi], {
    replies: [{ status: '+OK', text: '3 octets', data: 'line1\r\n.dotted\r\n..\r\n.\r\nx\r\n\r\n' }],
    error: null,
  });
});

test('empty multi-line reply', () => {
  assertSplitInvariant('+OK\r\n.\r\n', [multi], { replies: [{ status: '+OK', text: '', data: '' }], error: null });
});

test('pipelined replies in one stream keep their order and boundaries', () => {
  assertSplitInvariant('+OK 1 u1\r\n+OK\r\nSubject: a\r\n\r\n.\r\n-ERR gone\r\n+OK\r\n1 10\r\n.\r\n', [single, multi, multi, multi], {
    replies: [
      { status: '+OK', text: '1 u1', data: null },
      { status: '+OK', text: '', data: 'Subject: a\r\n\r\n' },
      { status: '-ERR', text: 'gone', data: null },
      { status: '+OK', text: '', data: '1 10\r\n' },
    ],
    error: null,
  });
});

test('NUL, 8-bit bytes and a CR not followed by LF pass through untouched', () => {
  const body = Buffer.from([0x00, 0xff, 0x80, 0x0d, 0x41, 0xe9, 0x00]);
  const input = Buffer.concat([Buffer.from('+OK\r\n'), body, Buffer.from('\r\n.\r\n')]);
  assertSplitInvariant(input, [multi], {
    replies: [{ status: '+OK', text: '', data: Buffer.concat([body, Buffer.from('\r\n')]).toString('latin1') }],
    error: null,
  });
});

test('bare LF line ends are tolerated and data comes out with CRLF', () => {
  assertSplitInvariant('+OK hi\nfoo\n..bar\n\n.\n', [multi], {
    replies: [{ status: '+OK', text: 'hi', data: 'foo\r\n.bar\r\n\r\n' }],
    error: null,
  });
});

test('SASL continuation is a reply only when the command allows it', () => {
  assertSplitInvariant('+ PDEyMzQ+\r\n', [{ multiline: false, continuation: true }], {
    replies: [{ status: '+', text: 'PDEyMzQ+', data: null }],
    error: null,
  });
  assertSplitInvariant('+ PDEyMzQ+\r\n', [single], { replies: [], error: 'EPROTOCOL' });
});

test('a reply with no command outstanding is EPROTOCOL', () => {
  assertSplitInvariant('+OK one\r\n+OK extra\r\n', [single], {
    replies: [{ status: '+OK', text: 'one', data: null }],
    error: 'EPROTOCOL',
  });
});

test('garbage status line is EPROTOCOL', () => {
  assertSplitInvariant('HELLO there\r\n', [single], { replies: [], error: 'EPROTOCOL' });
  assertSplitInvariant('+OKAY\r\n', [single], { replies: [], error: 'EPROTOCOL' });
});

test('an unstuffed lone "." ends the reply early; the rest is then read as a status line', () => {
  assertSplitInvariant('+OK\r\nbody\r\n.\r\nmore body\r\n.\r\n', [multi, single], {
    replies: [{ status: '+OK', text: '', data: 'body\r\n' }],
    error: 'EPROTOCOL',
  });
});

test('line length cap: exactly maxLineBytes passes; one more fails that reply alone (dropped to its end), wherever the split', () => {
  const limits = { maxLineBytes: 16, maxReplyBytes: 1024 };
  const ok = '+OK\r\n' + 'a'.repeat(16) + '\r\n.\r\n';
  assertSplitInvariant(ok, [multi], { replies: [{ status: '+OK', text: '', data: 'a'.repeat(16) + '\r\n' }], error: null }, limits);
  const okLf = '+OK\r\n' + 'a'.repeat(16) + '\n.\r\n';
  assertSplitInvariant(okLf, [multi], { replies: [{ status: '+OK', text: '', data: 'a'.repeat(16) + '\r\n' }], error: null }, limits);
  // Inside a multi-line reply: the reply is marked over its limit, read to its terminator (a stuffed "..", lines
  // after the long one) and the next reply decodes normally: the session stays in sync.
  const over = { status: '+OK', text: '', data: null, overLimit: 'line longer than 16 bytes' };
  const tooLong = '+OK\r\n' + 'a'.repeat(17) + '\r\n..x\r\nafter\r\n.\r\n+OK next\r\n';
  assertSplitInvariant(tooLong, [multi, single], { replies: [over, { status: '+OK', text: 'next', data: null }], error: null }, limits);
  const farTooLong = '+OK\r\nfirst\r\n' + 'z'.repeat(200) + '\n.\r\n-ERR gone\r\n';
  assertSplitInvariant(farTooLong, [multi, multi], { replies: [over, { status: '-ERR', text: 'gone', data: null }], error: null }, limits);
  // A status line over the cap cannot be delimited: the decoder fails.
  const statusTooLong = '+OK ' + 'b'.repeat(13) + '\r\n';
  assertSplitInvariant(statusTooLong, [single], { replies: [], error: 'ELIMIT' }, limits);
  // A status line that never ends is cut off as soon as it exceeds the cap.
  assert.equal(decode([Buffer.from('+OK ' + 'x'.repeat(100))], [single], limits).error, 'ELIMIT');
});

test('buffered reply cap: beyond maxReplyBytes (or the reply\'s own maxBytes) that reply alone fails; fine at exactly the cap', () => {
  const limits = { maxLineBytes: 100, maxReplyBytes: 20 };
  // 3 lines of 5 bytes + CRLF = 21 decoded bytes.
  assertSplitInvariant('+OK\r\nabcde\r\nabcde\r\nabcde\r\n.\r\n+OK 1 2\r\n', [multi, single], {
    replies: [{ status: '+OK', text: '', data: null, overLimit: 'reply larger than 20 bytes' }, { status: '+OK', text: '1 2', data: null }],
    error: null,
  }, limits);
  assertSplitInvariant('+OK\r\nabcdefgh\r\nabcdefgh\r\n.\r\n', [multi], {
    replies: [{ status: '+OK', text: '', data: 'abcdefgh\r\nabcdefgh\r\n' }],
    error: null,
  }, limits);
  // A per-reply cap under maxReplyBytes applies to that reply only.
  const capped: ReplyExpectation = { multiline: true, maxBytes: 7 };
  assertSplitInvariant('+OK\r\nabcde\r\n.\r\n+OK\r\nabcdef\r\n.\r\n+OK\r\nabcdef\r\n.\r\n', [capped, capped, multi], {
    replies: [
      { status: '+OK', text: '', data: 'abcde\r\n' },
      { status: '+OK', text: '', data: null, overLimit: 'reply larger than 7 bytes' },
      { status: '+OK', text: '', data: 'abcdef\r\n' },
    ],
    error: null,
  }, { maxLineBytes: 100, maxReplyBytes: 1024 });
});

test('streamed data (onData) is not bound by maxReplyBytes and arrives complete', () => {
  const got: Buffer[] = [];
  const exp: ReplyExpectation = { multiline: true, onData: (c) => got.push(Buffer.from(c)) };
  const run = decode([Buffer.from('+OK\r\n0123456789\r\n..9876543210\r\n.\r\n')], [exp], { maxLineBytes: 100, maxReplyBytes: 5 });
  assert.deepEqual(run, { replies: [{ status: '+OK', text: '', data: null }], error: null });
  assert.equal(Buffer.concat(got).toString(), '0123456789\r\n.9876543210\r\n');
});

test('exclusive reply (STLS): any byte after it is ESTLS_INJECTION, in the same chunk or a later one', () => {
  const stls: ReplyExpectation = { multiline: false, exclusive: true };
  assertSplitInvariant('+OK begin TLS\r\n+OK injected\r\n', [stls, single], {
    replies: [{ status: '+OK', text: 'begin TLS', data: null }],
    error: 'ESTLS_INJECTION',
  });
  // "-ERR" to STLS does not seal.
  assertSplitInvariant('-ERR no\r\n+OK\r\n', [stls, single], {
    replies: [
      { status: '-ERR', text: 'no', data: null },
      { status: '+OK', text: '', data: null },
    ],
    error: null,
  });
});

test('errors are typed Pop3Error and reported once; later input is ignored', () => {
  const errors: Pop3Error[] = [];
  const reader = new ReplyReader(BIG, { expectation: () => undefined, onReply: () => assert.fail('no reply expected'), onError: (e) => errors.push(e) });
  reader.push(Buffer.from('+OK surprise\r\n'));
  reader.push(Buffer.from('+OK again\r\n'));
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof Pop3Error);
  assert.equal(errors[0]!.code, 'EPROTOCOL');
  assert.equal(reader.hasFailed, true);
});

// ---- property test: 10,000 generated reply streams, split at random points, decode like the model ----

interface ModelReply {
  status: '+OK' | '-ERR';
  text: string;
  multiline: boolean;
  lines: Buffer[]; // decoded data lines, no line end
}

const lineArb = fc
  .oneof(
    { weight: 3, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom(Uint8Array.from([0x2e]), Uint8Array.from([0x2e, 0x2e]), Uint8Array.from([0x2e, 0x0d, 0x41])) },
  )
  .map((u) => {
    // No LF inside a line, and no CR right before the line end (that CR would be part of CRLF).
    const b = Buffer.from(u.map((x) => (x === 0x0a ? 0x41 : x)));
    if (b.length > 0 && b[b.length - 1] === 0x0d) b[b.length - 1] = 0x42;
    return b;
  });

const replyArb: fc.Arbitrary<ModelReply> = fc.record({
  status: fc.constantFrom<'+OK' | '-ERR'>('+OK', '+OK', '-ERR'),
  text: fc.stringMatching(/^[ -~]{0,10}$/).map((s) => s.trim()),
  multiline: fc.boolean(),
  lines: fc.array(lineArb, { maxLength: 6 }),
});

function encode(replies: ModelReply[], bareLf: boolean): Buffer {
  const eol = bareLf ? '\n' : '\r\n';
  const parts: Buffer[] = [];
  for (const r of replies) {
    parts.push(Buffer.from(`${r.status}${r.text ? ' ' + r.text : ''}${eol}`, 'latin1'));
    if (r.status === '+OK' && r.multiline) {
      for (const l of r.lines) {
        if (l[0] === 0x2e) parts.push(Buffer.from('.'));
        parts.push(l, Buffer.from(eol));
      }
      parts.push(Buffer.from(`.${eol}`));
    }
  }
  return Buffer.concat(parts);
}

function expected(replies: ModelReply[]): Run {
  return {
    replies: replies.map((r) => ({
      status: r.status,
      text: r.text,
      data: r.status === '+OK' && r.multiline ? Buffer.concat(r.lines.flatMap((l) => [l, Buffer.from('\r\n')])).toString('latin1') : null,
    })),
    error: null,
  };
}

test('property: 10,000 random reply streams split at random points decode like the model', { timeout: 120_000 }, () => {
  let runs = 0;
  fc.assert(
    fc.property(
      fc.array(replyArb, { minLength: 1, maxLength: 5 }),
      fc.boolean(),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
      (replies, bareLf, cutFractions) => {
        runs++;
        const buf = encode(replies, bareLf);
        const exps = replies.map((r) => (r.multiline ? multi : single));
        const cuts = cutFractions.map((f) => Math.floor(f * buf.length));
        const want = expected(replies);
        assert.deepEqual(decode(splitAt(buf, cuts), exps), want);
        assert.deepEqual(decode([buf], exps), want);
      },
    ),
    { seed: 20260101, numRuns: 10_000 },
  );
  assert.equal(runs, 10_000);
});
