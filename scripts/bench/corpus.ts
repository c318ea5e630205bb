// Deterministic benchmark mail corpus: newsletters, ordinary mail, mail with base64 attachments and alarm mails (half with JPEG snapshots), from a seeded PRNG.
import { prng } from '../../test/support/prng.js';
export { prng } from '../../test/support/prng.js';
//
// Message i of a corpus depends only on (seed, i), so any message can be regenerated on its own and two runs with the
// same seed deliver byte-identical mail. Layout: every 10th message (i % 10 === 3) is an alarm; alarms alternate
// between an NVR camera alarm with a JPEG snapshot (from nvr.local) and an alarm-panel notice without one (from
// alarm.local). Of the rest, ATTACHMENT_SHARE carry one base64 attachment of 100–500 KB (decoded), the others are
// newsletters (HTML + text, 20–200 KB) or ordinary text mail (20–200 KB). Headers are realistic (Received chains,
// DKIM/ARC signatures, list headers) so that headers are about 1.3 % of the bytes, as in a real mailbox.

const CRLF = '\r\n';

export type MailKind = 'newsletter' | 'ordinary' | 'attachment' | 'alarm-snapshot' | 'alarm';

export interface CorpusMessage {
  index: number;
  kind: MailKind;
  from: string;
  subject: string;
  /** The complete message, CRLF line ends, as delivered to the Maildir. */
  raw: Buffer;
  /** Bytes of the header block including the blank line that ends it. */
  headerBytes: number;
}

/** Share of non-alarm mail that carries a base64 attachment. */
export const ATTACHMENT_SHARE = 0.35;
export const NVR_DOMAIN = 'nvr.local';
export const PANEL_DOMAIN = 'alarm.local';


/** Seed of message i: a hash of (seed, i), so messages are independent of each other. */
function messageSeed(seed: number, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const WORDS = (
  'the of and to in is for on with as by at from this that your our new now more offer sale week price update news ' +
  'product service order account delivery shipping free best today only limited time discover learn read story ' +
  'team community event report summary meeting project schedule review please thanks regards information details ' +
  'available customer support privacy policy unsubscribe preferences newsletter garden kitchen travel winter summer'
).split(' ');

/** A fixed pool of text (about 256 KB) from which bodies take slices: fast, and deterministic per seed. */
const poolCache = new Map<number, string>();
function textPool(seed: number): string {
  let pool = poolCache.get(seed);
  if (pool) return pool;
  const r = prng(seed ^ 0x5bd1e995);
  const parts: string[] = [];
  let len = 0;
  while (len < 256 * 1024) {
    const w = WORDS[Math.floor(r() * WORDS.length)]!;
    parts.push(w);
    len += w.length + 1;
  }
  pool = parts.join(' ');
  poolCache.set(seed, pool);
  return pool;
}

/** About `bytes` of text from the pool, in lines of at most 76 characters (none starts with a dot). */
function text(seed: number, r: () => number, bytes: number): string {
  const pool = textPool(seed);
  const lines: string[] = [];
  let total = 0;
  let pos = Math.floor(r() * (pool.length - 200));
  while (total < bytes) {
    const width = 60 + Math.floor(r() * 16);
    if (pos + width >= pool.length) pos = Math.floor(r() * 1000);
    let line = pool.slice(pos, pos + width).trim();
    pos += width;
    if (!line) line = 'x';
    lines.push(line);
    total += line.length + 2;
  }
  return lines.join(CRLF);
}

function randomBytes(r: () => number, n: number): Buffer {
  const buf = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) buf.writeUInt32LE(Math.floor(r() * 4294967296), i);
  for (; i < n; i++) buf[i] = Math.floor(r() * 256);
  return buf;
}

/** A JPEG-looking buffer (SOI, JFIF APP0, random data, EOI) of exactly n bytes. */
function jpeg(r: () => number, n: number): Buffer {
  const buf = randomBytes(r, Math.max(24, n));
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]).copy(buf, 0);
  buf[buf.length - 2] = 0xff;
  buf[buf.length - 1] = 0xd9;
  return buf;
}

function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join(CRLF);
}

const hex = (r: () => number, n: number) => randomBytes(r, Math.ceil(n / 2)).toString('hex').slice(0, n);
const b64 = (r: () => number, n: number) => randomBytes(r, Math.ceil((n * 3) / 4)).toString('base64').slice(0, n);
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const between = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** Fold a long header value at spaces or, for tokens (signatures), every 72 characters. */
function fold(name: string, value: string): string {
  const out: string[] = [];
  let line = `${name}: `;
  for (const token of value.split(' ')) {
    let t = token;
    while (line.length + t.length > 76 && t.length > 72) {
      const room = Math.max(1, 76 - line.length);
      out.push(line + t.slice(0, room));
      line = '\t';
      t = t.slice(room);
    }
    if (line.length + t.length + 1 > 76 && line.trim()) {
      out.push(line.trimEnd());
      line = `\t${t} `;
    } else line += `${t} `;
  }
  if (line.trim()) out.push(line.trimEnd());
  return out.join(CRLF);
}

const BASE_TIME = Date.UTC(2026, 0, 5, 6, 0, 0);

function rfcDate(ms: number): string {
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** What the local spam filter adds to every mail from outside. */
function spamHeaders(r: () => number): string[] {
  const score = (r() * 3 - 1).toFixed(1);
  return [
    fold('X-Spam-Status', `No, score=${score} required=5.0 tests=BAYES_00,DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU,DKIM_VALID_EF,HTML_MESSAGE,RCVD_IN_DNSWL_NONE,SPF_HELO_NONE,SPF_PASS autolearn=ham autolearn_force=no version=4.0.0`),
    `X-Spam-Checker-Version: SpamAssassin 4.0.0 (2022-12-13) on mail.home.example`,
  ];
}

function received(r: () => number, from: string, by: string, ms: number): string {
  const ip = `${between(r, 11, 223)}.${between(r, 0, 255)}.${between(r, 0, 255)}.${between(r, 1, 254)}`;
  return fold('Received', `from ${from} (${from} [${ip}]) by ${by} (Postfix) with ESMTPS id ${hex(r, 12).toUpperCase()} for <alice@home.example>; ${rfcDate(ms)}`);
}

/** The heavy header set of bulk mail from a big provider: Received chain, ARC, DKIM, list headers. */
function bulkHeaders(r: () => number, domain: string, ms: number): string[] {
  const h: string[] = [`Return-Path: <bounce-${hex(r, 24)}@mail.${domain}>`, `Delivered-To: alice@home.example`, ...spamHeaders(r)];
  const hops = between(r, 3, 5);
  for (let k = 0; k < hops; k++) h.push(received(r, `mx${k}.${domain}`, k === 0 ? 'mail.home.example' : `relay${k}.mail.home.example`, ms - k * 1000));
  h.push(fold('ARC-Seal', `i=1; a=rsa-sha256; t=${Math.floor(ms / 1000)}; cv=none; d=${domain}; s=arc-2025; b=${b64(r, 344)}`));
  h.push(fold('ARC-Message-Signature', `i=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=arc-2025; h=to:subject:message-id:date:from:mime-version:list-unsubscribe; bh=${b64(r, 44)}; b=${b64(r, 344)}`));
  h.push(fold('ARC-Authentication-Results', `i=1; mx.${domain}; dkim=pass header.i=@${domain} header.s=s1 header.b=${b64(r, 8)}; spf=pass (domain of bounce@mail.${domain} designates sender) smtp.mailfrom=bounce@mail.${domain}; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=${domain}`));
  h.push(fold('Authentication-Results', `mail.home.example; dkim=pass (2048-bit key) header.d=${domain} header.i=@${domain} header.b=${b64(r, 8)}; spf=pass smtp.mailfrom=mail.${domain}; dmarc=pass header.from=${domain}`));
  h.push(fold('DKIM-Signature', `v=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=s1; t=${Math.floor(ms / 1000)}; h=from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post:mime-version:content-type; bh=${b64(r, 44)}; b=${b64(r, 344)}`));
  h.push(fold('DKIM-Signature', `v=1; a=rsa-sha256; c=relaxed/relaxed; d=esp-mailer.net; s=esp; t=${Math.floor(ms / 1000)}; h=from:to:subject:date:message-id:feedback-id; bh=${b64(r, 44)}; b=${b64(r, 344)}`));
  h.push(fold('List-Unsubscribe', `<https://click.${domain}/unsub/${hex(r, 64)}>, <mailto:unsub-${hex(r, 32)}@mail.${domain}>`));
  h.push('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
  h.push(`List-Id: <news.${domain}>`);
  h.push(`Feedback-ID: ${between(r, 1000, 9999)}:${hex(r, 8)}:campaign:esp-mailer`);
  h.push(`X-Campaign-ID: ${hex(r, 32)}`);
  h.push('Precedence: bulk');
  return h;
}

/** Headers of person-to-person mail through one provider. */
function personalHeaders(r: () => number, domain: string, ms: number): string[] {
  const h: string[] = [`Return-Path: <${pick(r, ['bob', 'carol', 'dave', 'erin'])}@${domain}>`, `Delivered-To: alice@home.example`, ...spamHeaders(r)];
  const hops = between(r, 2, 4);
  for (let k = 0; k < hops; k++) h.push(received(r, `smtp${k}.${domain}`, k === 0 ? 'mail.home.example' : `relay${k}.mail.home.example`, ms - k * 1000));
  h.push(fold('ARC-Seal', `i=1; a=rsa-sha256; t=${Math.floor(ms / 1000)}; cv=none; d=${domain}; s=arc-2025; b=${b64(r, 344)}`));
  h.push(fold('Authentication-Results', `mail.home.example; dkim=pass header.d=${domain} header.b=${b64(r, 8)}; spf=pass smtp.mailfrom=${domain}; dmarc=pass header.from=${domain}`));
  h.push(fold('DKIM-Signature', `v=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=mail; t=${Math.floor(ms / 1000)}; h=from:to:subject:date:message-id:mime-version:content-type; bh=${b64(r, 44)}; b=${b64(r, 344)}`));
  h.push(`X-Mailer: ${pick(r, ['Thunderbird 128.3.1', 'Apple Mail (2.3776)', 'Microsoft Outlook 16.0', 'K-9 Mail 6.800'])}`);
  h.push(`Thread-Index: ${b64(r, 40)}`);
  return h;
}

/** Build message `index` of corpus `seed`; `kind` overrides the layout (e.g. for mail delivered later in a run). */
export function corpusMessage(seed: number, index: number, kind?: MailKind): CorpusMessage {
  const r = prng(messageSeed(seed, index));
  const k: MailKind = kind ?? kindAt(seed, index);
  const ms = BASE_TIME + index * 37_000 + Math.floor(r() * 30_000);
  const date = rfcDate(ms);
  const msgId = `<${hex(r, 16)}.${index}@`;
  let head: string[];
  let from: string;
  let subject: string;
  let content: string; // top-level Content-* fields, blank line, body

  if (k === 'alarm-snapshot') {
    const cam = (index % 8) + 1;
    from = `NVR <nvr@${NVR_DOMAIN}>`;
    subject = `ALARM: ${pick(r, ['Motion Detected', 'Line Crossing', 'Intrusion'])} Camera ${cam}`;
    head = [`Return-Path: <nvr@${NVR_DOMAIN}>`, received(r, `nvr.${NVR_DOMAIN}`, 'mail.home.example', ms)];
    head.push(`From: ${from}`, `To: alice@home.example`, `Subject: ${subject}`, `Date: ${date}`, `Message-ID: ${msgId}${NVR_DOMAIN}>`, 'MIME-Version: 1.0', 'X-Mailer: NVR-Mail 4.2');
    const b = `----=_nvr_${hex(r, 16)}`;
    const pic = jpeg(r, between(r, 100, 400) * 1024);
    content =
      `Content-Type: multipart/mixed; boundary="${b}"${CRLF}${CRLF}` +
      `--${b}${CRLF}Content-Type: text/plain; charset=us-ascii${CRLF}Content-Transfer-Encoding: 7bit${CRLF}${CRLF}` +
      `Event: ${subject.slice(7)}${CRLF}Channel: ${cam}${CRLF}Time: ${date}${CRLF}${CRLF}` +
      `--${b}${CRLF}Content-Type: image/jpeg; name="snapshot-cam${cam}.jpg"${CRLF}Content-Transfer-Encoding: base64${CRLF}` +
      `Content-Disposition: attachment; filename="snapshot-cam${cam}.jpg"${CRLF}${CRLF}${base64Lines(pic)}${CRLF}--${b}--${CRLF}`;
  } else if (k === 'alarm') {
    from = `Alarm Panel <panel@${PANEL_DOMAIN}>`;
    subject = `ALARM: Zone ${between(r, 1, 12)} ${pick(r, ['Intrusion', 'Door Open', 'Smoke', 'Tamper', 'Power Failure'])}`;
    head = [`Return-Path: <panel@${PANEL_DOMAIN}>`, received(r, `panel.${PANEL_DOMAIN}`, 'mail.home.example', ms)];
    head.push(`From: ${from}`, `To: alice@home.example`, `Subject: ${subject}`, `Date: ${date}`, `Message-ID: ${msgId}${PANEL_DOMAIN}>`, 'MIME-Version: 1.0');
    content = `Content-Type: text/plain; charset=us-ascii${CRLF}Content-Transfer-Encoding: 7bit${CRLF}${CRLF}${text(seed, r, between(r, 300, 1500))}${CRLF}`;
  } else if (k === 'newsletter') {
    const domain = pick(r, ['shop.example', 'news.example', 'travel.example', 'bank.example', 'club.example']);
    from = `${domain.split('.')[0]!.toUpperCase()} News <news@${domain}>`;
    subject = `${pick(r, ['Weekly deals', 'Your update', 'New arrivals', 'Last chance', 'This week'])} #${index}`;
    head = bulkHeaders(r, domain, ms);
    head.push(`From: ${from}`, `To: alice@home.example`, `Subject: ${subject}`, `Date: ${date}`, `Message-ID: ${msgId}${domain}>`, 'MIME-Version: 1.0');
    const size = between(r, 20, 200) * 1024;
    const b = `----=_alt_${hex(r, 20)}`;
    const plain = text(seed, r, Math.floor(size * 0.3));
    const html = `<html><body>${CRLF}<p>${text(seed, r, Math.floor(size * 0.7)).split(CRLF).join(`</p>${CRLF}<p>`)}</p>${CRLF}</body></html>`;
    content =
      `Content-Type: multipart/alternative; boundary="${b}"${CRLF}${CRLF}` +
      `--${b}${CRLF}Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: 8bit${CRLF}${CRLF}${plain}${CRLF}` +
      `--${b}${CRLF}Content-Type: text/html; charset=utf-8${CRLF}Content-Transfer-Encoding: 8bit${CRLF}${CRLF}${html}${CRLF}--${b}--${CRLF}`;
  } else {
    const domain = pick(r, ['mail.example', 'friends.example', 'work.example']);
    const who = pick(r, ['Bob Baker', 'Carol Chen', 'Dave Diaz', 'Erin Evans']);
    from = `${who} <${who.split(' ')[0]!.toLowerCase()}@${domain}>`;
    subject = `${pick(r, ['Re: plans', 'Photos', 'Invoice', 'Minutes', 'Fwd: document', 'Question'])} ${index}`;
    head = personalHeaders(r, domain, ms);
    head.push(`From: ${from}`, `To: Alice <alice@home.example>`, `Subject: ${subject}`, `Date: ${date}`, `Message-ID: ${msgId}${domain}>`, 'MIME-Version: 1.0');
    if (k === 'attachment') {
      const b = `----=_mixed_${hex(r, 20)}`;
      const ext = pick(r, ['pdf', 'zip', 'docx', 'xlsx']);
      const type = { pdf: 'application/pdf', zip: 'application/zip', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' }[ext];
      const att = randomBytes(r, between(r, 100, 500) * 1024);
      content =
        `Content-Type: multipart/mixed; boundary="${b}"${CRLF}${CRLF}` +
        `--${b}${CRLF}Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: 8bit${CRLF}${CRLF}${text(seed, r, between(r, 1, 20) * 1024)}${CRLF}` +
        `--${b}${CRLF}Content-Type: ${type}; name="file-${index}.${ext}"${CRLF}Content-Transfer-Encoding: base64${CRLF}` +
        `Content-Disposition: attachment; filename="file-${index}.${ext}"${CRLF}${CRLF}${base64Lines(att)}${CRLF}--${b}--${CRLF}`;
    } else {
      content = `Content-Type: text/plain; charset=utf-8${CRLF}Content-Transfer-Encoding: 8bit${CRLF}${CRLF}${text(seed, r, between(r, 20, 200) * 1024)}${CRLF}`;
    }
  }
  // The top-level Content-* fields of `content` belong to the header block, up to the first blank line.
  const headText = head.join(CRLF) + CRLF;
  const raw = Buffer.from(headText + content, 'latin1');
  const headerBytes = Buffer.byteLength(headText, 'latin1') + content.indexOf(CRLF + CRLF) + 4;
  return { index, kind: k, from, subject, raw, headerBytes };
}

/** The kind of message `index` in corpus `seed` (without building it). */
export function kindAt(seed: number, index: number): MailKind {
  if (index % 10 === 3) return Math.floor(index / 10) % 2 === 0 ? 'alarm-snapshot' : 'alarm';
  const r = prng(messageSeed(seed, index) ^ 0xa5a5a5a5);
  const x = r();
  if (x < ATTACHMENT_SHARE) return 'attachment';
  return x < ATTACHMENT_SHARE + (1 - ATTACHMENT_SHARE) * 0.6 ? 'newsletter' : 'ordinary';
}

/** Messages 0..count-1 of corpus `seed`, generated one at a time. */
export function* corpus(seed: number, count: number): Generator<CorpusMessage> {
  for (let i = 0; i < count; i++) yield corpusMessage(seed, i);
}
