// Builders for sample mail in tests: correct RFC 5322/MIME messages with CRLF line ends, RFC 2047 subjects and base64 attachments.
import { chown, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface MailAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
  /** Content-ID for inline parts (without angle brackets). */
  cid?: string;
}

export interface MailSpec {
  from?: string;
  to?: string;
  subject?: string;
  date?: Date | string;
  messageId?: string;
  /** Plain-text body (UTF-8). */
  body?: string;
  /** Optional HTML alternative. */
  html?: string;
  attachments?: MailAttachment[];
  /** Extra header fields, in order, e.g. { 'X-Camera': 'garage' }. Values are written as given (must be ASCII). */
  headers?: Record<string, string>;
}

const CRLF = '\r\n';
let counter = 0;

const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/** RFC 2047 B-encoding for a header value with non-ASCII text (split into words of <= 75 chars). */
export function encodeWord(text: string): string {
  if (isAscii(text)) return text;
  const words: string[] = [];
  let chunk = '';
  for (const ch of text) {
    const next = chunk + ch;
    if (Buffer.byteLength(next) > 45) {
      words.push(chunk);
      chunk = ch;
    } else chunk = next;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(`${CRLF} `);
}

/** Date in RFC 5322 form, e.g. "Sun, 22 Nov 2026 00:09:33 +0000". */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** base64 in lines of 76 characters, CRLF-separated. */
export function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join(CRLF);
}

/** Normalise any line ends to CRLF. */
export function toCrlf(text: string): string {
  return text.replace(/\r?\n/g, CRLF);
}

function textPart(body: string, subtype: 'plain' | 'html'): string {
  if (isAscii(body)) {
    return `Content-Type: text/${subtype}; charset=us-ascii${CRLF}Content-Transfer-Encoding: 7bit${CRLF}${CRLF}${toCrlf(body)}`;
  }
  return `Content-Type: text/${subtype}; charset=utf-8${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${base64Lines(Buffer.from(body, 'utf8'))}`;
}

function boundary(tag: string): string {
  return `----=_p2m_${tag}_${process.pid}_${++counter}`;
}

/** Build a complete message (string with CRLF line ends). Every field has a sensible default. */
export function makeMail(spec: MailSpec = {}): string {
  const n = ++counter;
  const date = spec.date instanceof Date ? rfc5322Date(spec.date) : (spec.date ?? rfc5322Date(new Date()));
  const head: string[] = [
    `From: ${encodeWord(spec.from ?? 'Camera <camera@example.test>')}`,
    `To: ${encodeWord(spec.to ?? 'alice@example.test')}`,
    `Subject: ${encodeWord(spec.subject ?? `Test message ${n}`)}`,
    `Date: ${date}`,
    `Message-ID: ${spec.messageId ?? `<p2m-test-${n}.${process.pid}.${Date.now()}@example.test>`}`,
    'MIME-Version: 1.0',
  ];
  for (const [k, v] of Object.entries(spec.headers ?? {})) head.push(`${k}: ${v}`);

  const body = spec.body ?? 'This is a test message.\n';
  let content = spec.html !== undefined
    ? (() => {
        const b = boundary('alt');
        return `Content-Type: multipart/alternative; boundary="${b}"${CRLF}${CRLF}` +
          `--${b}${CRLF}${textPart(body, 'plain')}${CRLF}--${b}${CRLF}${textPart(spec.html, 'html')}${CRLF}--${b}--${CRLF}`;
      })()
    : textPart(body, 'plain');

  if (spec.attachments?.length) {
    const b = boundary('mixed');
    let mixed = `Content-Type: multipart/mixed; boundary="${b}"${CRLF}${CRLF}This is a multi-part message in MIME format.${CRLF}`;
    mixed += `--${b}${CRLF}${content}${content.endsWith(CRLF) ? '' : CRLF}`;
    for (const a of spec.attachments) {
      const name = encodeWord(a.filename).includes('=?') ? encodeWord(a.filename) : `"${a.filename}"`;
      mixed += `--${b}${CRLF}Content-Type: ${a.contentType}; name=${name}${CRLF}` +
        `Content-Transfer-Encoding: base64${CRLF}` +
        `Content-Disposition: ${a.cid ? 'inline' : 'attachment'}; filename=${name}${CRLF}` +
        (a.cid ? `Content-ID: <${a.cid}>${CRLF}` : '') +
        `${CRLF}${base64Lines(a.content)}${CRLF}`;
    }
    mixed += `--${b}--${CRLF}`;
    content = mixed;
  }
  // content starts with the part's own Content-* header lines, which become top-level header fields
  const text = head.join(CRLF) + CRLF + content;
  return text.endsWith(CRLF) ? text : text + CRLF;
}

/** Bytes that look like a JPEG (SOI marker, JFIF APP0, filler, EOI marker) of exactly `size` bytes (>= 24). */
export function fakeJpeg(size = 2048, seed = 1): Buffer {
  const buf = Buffer.alloc(Math.max(24, size));
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]).copy(buf, 0);
  let x = seed >>> 0 || 1;
  for (let i = 20; i < buf.length - 2; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    buf[i] = (x >>> 16) & 0xff;
  }
  buf[buf.length - 2] = 0xff;
  buf[buf.length - 1] = 0xd9;
  return buf;
}

let maildirSeq = 0;
let maildirStamp = 0;

/**
 * Deliver one message into a Maildir the way an MDA does: write to tmp/, chown to the mail user, rename into new/.
 * File names carry a strictly increasing time stamp, because servers assign UIDs in that order.
 */
export async function deliverToMaildir(md: string, raw: string | Buffer, owner: { uid: number; gid: number }): Promise<string> {
  const nowUs = Date.now() * 1000;
  maildirStamp = Math.max(nowUs, maildirStamp + 1);
  const name = `${Math.floor(maildirStamp / 1e6)}.M${String(maildirStamp % 1e6).padStart(6, '0')}P${process.pid}Q${++maildirSeq}.pop2mqtt-test`;
  const tmp = path.join(md, 'tmp', name);
  const dest = path.join(md, 'new', name);
  await writeFile(tmp, raw, { mode: 0o600 });
  await chown(tmp, owner.uid, owner.gid);
  await rename(tmp, dest);
  return dest;
}
