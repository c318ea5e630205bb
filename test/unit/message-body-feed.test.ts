// Proves a streamed message reaches the MIME parser in writes of at least PARSER_WRITE_BYTES (mailparser copies everything it holds at every write), with the same result and errors as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { MailParser } from 'mailparser';
import { parseMessage, PARSER_WRITE_BYTES } from '../../src/message/body.js';

function snapshotMail(jpegBytes: number): { raw: Buffer; jpeg: Buffer } {
  const jpeg = Buffer.alloc(jpegBytes);
  for (let i = 0; i < jpeg.length; i++) jpeg[i] = (i * 131 + (i >> 7)) & 0xff;
  jpeg[0] = 0xff;
  jpeg[1] = 0xd8;
  const b64 = jpeg.toString('base64').replace(/.{76}/g, '$&\r\n');
  const raw = Buffer.from([
    'From: nvr@nvr.local', 'Subject: ALARM: Motion Camera 3', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="BB"', '',
    '--BB', 'Content-Type: text/plain', '', 'Motion detected', '--BB',
    'Content-Type: image/jpeg; name="snap.jpg"', 'Content-Disposition: attachment; filename="snap.jpg"', 'Content-Transfer-Encoding: base64', '',
    b64, '--BB--', '',
  ].join('\r\n'));
  return { raw, jpeg };
}

/** A stream that pushes `raw` in pieces of `size` bytes, each in its own tick (as lines or socket reads arrive). */
function trickle(raw: Buffer, size: number, failAt?: number): Readable {
  let pos = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (failAt !== undefined && pos >= failAt) {
          this.destroy(new Error('connection lost'));
          return;
        }
        if (pos >= raw.length) {
          this.push(null);
          return;
        }
        this.push(raw.subarray(pos, pos + size));
        pos += size;
      });
    },
  });
}

async function withWriteSpy<T>(fn: () => Promise<T>): Promise<{ value: T; writes: number[] }> {
  const writes: number[] = [];
  const orig = MailParser.prototype.write;
  MailParser.prototype.write = function (this: MailParser, chunk: unknown, ...rest: unknown[]) {
    writes.push((chunk as Buffer).length);
    return (orig as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof orig;
  try {
    return { value: await fn(), writes };
  } finally {
    MailParser.prototype.write = orig;
  }
}

test('line-sized pieces reach mailparser as writes of at least 64 KiB (the last one shorter), same result', { timeout: 10_000 }, async () => {
  const { raw, jpeg } = snapshotMail(300_000);
  const { value: m, writes } = await withWriteSpy(() => parseMessage(trickle(raw, 78)));
  assert.equal(writes.reduce((a, b) => a + b, 0), raw.length, 'every byte written once');
  assert.ok(writes.length <= Math.ceil(raw.length / PARSER_WRITE_BYTES), `${writes.length} writes for ${raw.length} bytes`);
  for (const w of writes.slice(0, -1)) assert.ok(w >= PARSER_WRITE_BYTES, `write of ${w} bytes`);
  assert.equal(m.headers.subject, 'ALARM: Motion Camera 3');
  assert.match(m.text, /Motion detected/);
  assert.equal(m.attachments.length, 1);
  assert.equal(m.attachments[0]!.size, jpeg.length);
  assert.equal(m.attachments[0]!.sha256, createHash('sha256').update(jpeg).digest('hex'));
  assert.ok(m.attachments[0]!.content!.equals(jpeg));
  assert.deepEqual(m.limitsExceeded, []);
});

test('a whole Buffer is one write; a short stream is one write at its end', { timeout: 10_000 }, async () => {
  const { raw } = snapshotMail(20_000);
  const whole = await withWriteSpy(() => parseMessage(raw));
  assert.deepEqual(whole.writes, [raw.length]);
  const streamed = await withWriteSpy(() => parseMessage(trickle(raw, 1000)));
  assert.deepEqual(streamed.writes, [raw.length]);
  assert.equal(streamed.value.attachments[0]!.sha256, whole.value.attachments[0]!.sha256);
});

test('an error of the source stream rejects the parse', { timeout: 10_000 }, async () => {
  const { raw } = snapshotMail(300_000);
  await assert.rejects(parseMessage(trickle(raw, 4096, 200_000)), /connection lost/);
});
