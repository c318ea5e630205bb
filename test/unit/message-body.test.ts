// Tests of full-message parsing: charsets, HTML→text, attachments streamed with caps, limits, stream input, broken MIME.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseMessage } from '../../src/message/body.js';
import { MessageParseError } from '../../src/message/errors.js';

const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n'), 'latin1');

function mixed(parts: string[][], extraHeaders: string[] = []): Buffer {
  const lines = ['From: a@b.c', 'Subject: t', 'MIME-Version: 1.0', ...extraHeaders, 'Content-Type: multipart/mixed; boundary="BB"', ''];
  for (const p of parts) lines.push('--BB', ...p);
  lines.push('--BB--', '');
  return crlf(lines);
}

const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 2, 3, 0xff, 0xd9]);

test('quoted-printable Latin-1 text is decoded to Unicode', { timeout: 5000 }, async () => {
  const raw = crlf(['Subject: x', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', 'Gr=FC=DFe aus Zone 3=', ' weiter', '']);
  const m = await parseMessage(raw);
  assert.match(m.text, /Grüße aus Zone 3 weiter/);
  assert.equal(m.headers.subject, 'x');
  assert.deepEqual(m.limitsExceeded, []);
});

test('base64 windows-1252 and utf-8 bodies', { timeout: 5000 }, async () => {
  const w = Buffer.from([0x80, 0x20, 0x93, 0x71, 0x94]).toString('base64');
  const m = await parseMessage(crlf(['Content-Type: text/plain; charset=windows-1252', 'Content-Transfer-Encoding: base64', '', w, '']));
  assert.equal(m.text.trim(), '€ “q”');
  const u = Buffer.from('Tür offen ✓', 'utf8').toString('base64');
  const m2 = await parseMessage(crlf(['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64', '', u, '']));
  assert.equal(m2.text.trim(), 'Tür offen ✓');
});

test('HTML only (root) becomes text; HTML part in mixed without text part becomes text', { timeout: 5000 }, async () => {
  const m = await parseMessage(crlf(['Content-Type: text/html; charset=utf-8', '', '<html><body><p>UPS <b>on battery</b></p><img src="x.png"><a href="http://evil">link</a></body></html>', '']));
  assert.match(m.text, /UPS on battery/i);
  assert.doesNotMatch(m.text, /evil/);
  const m2 = await parseMessage(mixed([['Content-Type: text/html', '', '<p>Alarm &amp; Zone&nbsp;3</p>'], ['Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="s.jpg"', '', jpeg.toString('base64')]]));
  assert.match(m2.text, /Alarm & Zone 3/);
  assert.equal(m2.attachments.length, 1);
});

test('text part preferred over HTML in multipart/alternative', { timeout: 5000 }, async () => {
  const raw = crlf(['Content-Type: multipart/alternative; boundary="A"', '', '--A', 'Content-Type: text/plain', '', 'plain version', '--A', 'Content-Type: text/html', '', '<p>html version</p>', '--A--', '']);
  const m = await parseMessage(raw);
  assert.match(m.text, /plain version/);
  assert.doesNotMatch(m.text, /html version/);
});

test('attachments: metadata, sha256, content kept without callback', { timeout: 5000 }, async () => {
  const raw = mixed([
    ['Content-Type: text/plain', '', 'see attached'],
    ['Content-Type: image/jpeg; name="snap.jpg"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="snap.jpg"', '', jpeg.toString('base64')],
    ['Content-Type: application/pdf', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="r.pdf"', '', Buffer.from('%PDF-1.4').toString('base64')],
  ]);
  const m = await parseMessage(raw);
  assert.equal(m.text.trim(), 'see attached');
  assert.equal(m.attachments.length, 2);
  const [a, b] = m.attachments;
  assert.equal(a!.filename, 'snap.jpg');
  assert.equal(a!.contentType, 'image/jpeg');
  assert.equal(a!.size, jpeg.length);
  assert.equal(a!.sha256, createHash('sha256').update(jpeg).digest('hex'));
  assert.deepEqual(a!.content, jpeg);
  assert.equal(b!.contentType, 'application/pdf');
  assert.equal(b!.size, 8);
});

test('onAttachment receives the bytes (content not kept); keepAttachment filters; size cap keeps metadata only', { timeout: 5000 }, async () => {
  const big = Buffer.alloc(5000, 7);
  const raw = mixed([
    ['Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="a.jpg"', '', jpeg.toString('base64')],
    ['Content-Type: application/zip', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="z.zip"', '', jpeg.toString('base64')],
    ['Content-Type: image/png', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="big.png"', '', big.toString('base64')],
  ]);
  const got: string[] = [];
  const m = await parseMessage(raw, { keepAttachment: (a) => a.contentType.startsWith('image/'), maxAttachmentBytes: 1000 }, async (a, content) => {
    got.push(`${a.filename}:${content.length}`);
  });
  assert.deepEqual(got, [`a.jpg:${jpeg.length}`]);
  assert.equal(m.attachments.length, 3);
  assert.ok(m.attachments.every((a) => a.content === undefined));
  assert.equal(m.attachments[2]!.size, 5000);
  assert.equal(m.attachments[2]!.sha256, createHash('sha256').update(big).digest('hex'));
  assert.ok(m.limitsExceeded.includes('attachment_bytes'));
});

test('maxAttachments: extra attachments are not recorded and reported', { timeout: 5000 }, async () => {
  const parts = Array.from({ length: 5 }, (_, i) => ['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="f${i}.bin"`, '', Buffer.from([i]).toString('base64')]);
  const m = await parseMessage(mixed(parts), { maxAttachments: 2 });
  assert.deepEqual(m.attachments.map((a) => a.filename), ['f0.bin', 'f1.bin']);
  assert.ok(m.limitsExceeded.includes('attachments'));
});

test('too many parts stops MIME parsing and reports parts, without throwing', { timeout: 10000 }, async () => {
  const parts = Array.from({ length: 40 }, () => ['Content-Type: text/plain', '', 'x']);
  const m = await parseMessage(mixed(parts), { maxParts: 10 });
  assert.ok(m.limitsExceeded.includes('parts'), m.limitsExceeded.join());
  assert.equal(m.headers.subject, 't');
});

test('deep nesting is reported as depth', { timeout: 10000 }, async () => {
  const depth = 30;
  const lines = ['Subject: deep', `Content-Type: multipart/mixed; boundary="b0"`, ''];
  for (let i = 1; i <= depth; i++) lines.push(`--b${i - 1}`, `Content-Type: multipart/mixed; boundary="b${i}"`, '');
  lines.push(`--b${depth}`, 'Content-Type: text/plain', '', 'inner text');
  for (let i = depth; i >= 0; i--) lines.push(`--b${i}--`);
  const m = await parseMessage(crlf(lines), { maxDepth: 10 });
  assert.ok(m.limitsExceeded.includes('depth'), m.limitsExceeded.join());
  assert.match(m.text, /inner text/);
  const ok = await parseMessage(crlf(lines), { maxDepth: 50 });
  assert.equal(ok.limitsExceeded.includes('depth'), false);
});

test('stream input in small chunks gives the same result as a Buffer', { timeout: 5000 }, async () => {
  const raw = mixed([['Content-Type: text/plain; charset=utf-8', '', 'Zone 3 ✓'], ['Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="a.jpg"', '', jpeg.toString('base64')]]);
  const chunks: Buffer[] = [];
  for (let i = 0; i < raw.length; i += 7) chunks.push(raw.subarray(i, i + 7));
  const a = await parseMessage(Readable.from(chunks));
  const b = await parseMessage(raw);
  assert.equal(a.text, b.text);
  assert.equal(a.headers.subject, 't');
  assert.deepEqual(a.attachments.map((x) => x.sha256), b.attachments.map((x) => x.sha256));
});

test('broken MIME (no closing boundary, bad base64) still yields text and headers', { timeout: 5000 }, async () => {
  const raw = crlf(['Subject: broken', 'Content-Type: multipart/mixed; boundary="Q"', '', '--Q', 'Content-Type: text/plain', '', 'still here', '--Q', 'Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', '', '!!!not base64***', '']);
  const m = await parseMessage(raw);
  assert.equal(m.headers.subject, 'broken');
  assert.match(m.text, /still here/);
});

test('text cap', { timeout: 5000 }, async () => {
  const m = await parseMessage(crlf(['Content-Type: text/plain', '', 'y'.repeat(5000), '']), { maxTextBytes: 100 });
  assert.equal(m.text.length, 100);
  assert.ok(m.limitsExceeded.includes('text'));
});

test('an oversized top-level header block throws MessageParseError', { timeout: 5000 }, async () => {
  const raw = Buffer.from('X-Big: ' + 'a'.repeat(5000) + '\r\n\r\nbody');
  await assert.rejects(parseMessage(raw, { maxHeaderBytes: 1024 }), (e: unknown) => e instanceof MessageParseError || (e as Error).message.length > 0);
});

test('a throwing onAttachment callback rejects the parse', { timeout: 5000 }, async () => {
  const raw = mixed([['Content-Type: image/jpeg', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="a.jpg"', '', jpeg.toString('base64')]]);
  await assert.rejects(parseMessage(raw, {}, async () => { throw new Error('disk full'); }), /disk full/);
});

test('header block found at any chunk boundary, including one-byte chunks and an empty header block', { timeout: 10000 }, async () => {
  const msgs = [
    crlf(['Subject: one', 'X-A: 1', '', 'body text', '']),
    Buffer.from('Subject: lf\nX-A: 1\n\nbody text\n'),
    crlf(['', 'no headers at all', '']),
  ];
  for (const raw of msgs) {
    const whole = await parseMessage(raw);
    for (const size of [1, 2, 3, 5]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < raw.length; i += size) chunks.push(raw.subarray(i, i + size));
      const m = await parseMessage(Readable.from(chunks));
      assert.equal(m.headers.raw.toString('latin1'), whole.headers.raw.toString('latin1'), `chunk ${size}`);
      assert.equal(m.headers.subject, whole.headers.subject);
      assert.equal(m.text, whole.text);
    }
  }
  assert.equal((await parseMessage(msgs[0]!)).headers.subject, 'one');
  assert.deepEqual((await parseMessage(msgs[2]!)).headers.names(), []);
});
