// Turns the raw first body lines from TOP n N into matchable text: first N lines, quoted-printable/base64 undone for single-part text mail.
import type { ParsedHeaders } from './headers.js';
import { findHeaderEnd } from './headers.js';

/** Split the raw TOP output (or any raw message) into header bytes and body bytes. */
export function splitHeaderBody(raw: Buffer): { header: Buffer; body: Buffer } {
  const end = findHeaderEnd(raw);
  if (!end) return { header: raw, body: Buffer.alloc(0) };
  return { header: raw.subarray(0, end.headerEnd), body: raw.subarray(end.bodyStart) };
}

/** The first `lines` lines of a raw message body, as TOP n lines would return them. */
export function firstBodyLines(raw: Buffer, lines: number): string {
  const { body } = splitHeaderBody(raw);
  return firstLines(body.toString('utf8'), lines);
}

/** What a message may hold that its preview comes from (the rules' MessageData fits). */
export interface PreviewSource {
  headers?: ParsedHeaders;
  /** Raw first body lines from TOP n N (lines = the N asked for). */
  preview?: { lines: number; text: string };
  full?: { headers: ParsedHeaders; text: string };
}

/**
 * The first `lines` body lines as rules and alerts see them: the TOP preview decoded, else the first lines of the
 * retrieved text; undefined when neither is there. With `whole`, a preview of fewer lines does not count (a
 * condition on N lines must see N); without, it is shown as far as it goes.
 */
export function previewText(msg: PreviewSource, lines: number, whole: boolean): string | undefined {
  const p = msg.preview;
  if (p && (!whole || p.lines >= lines)) return decodePreview(firstLines(p.text, Math.min(lines, p.lines)), msg.headers ?? msg.full?.headers);
  if (msg.full) return firstLines(msg.full.text, lines);
  return undefined;
}

/** The first `n` lines of a text (line ends CRLF or LF, kept as LF). */
export function firstLines(text: string, n: number): string {
  const out: string[] = [];
  let pos = 0;
  while (out.length < n && pos <= text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) {
      if (pos < text.length) out.push(text.slice(pos));
      break;
    }
    out.push(text.slice(pos, nl).replace(/\r$/, ''));
    pos = nl + 1;
  }
  return out.join('\n');
}

function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  try {
    return new TextDecoder(charset || 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

function paramOf(value: string, param: string): string | undefined {
  const m = new RegExp(`;\\s*${param}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i').exec(value);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Make the preview matchable: when the message is a single text part in quoted-printable or base64, decode it
 * (charset from Content-Type); otherwise the raw lines are returned as they are (multipart previews show MIME lines).
 */
export function decodePreview(rawLines: string, headers: ParsedHeaders | undefined): string {
  if (!headers) return rawLines;
  const ctype = headers.getRaw('content-type')[0] ?? 'text/plain';
  if (!/^\s*text\//i.test(ctype)) return rawLines;
  const cte = (headers.getRaw('content-transfer-encoding')[0] ?? '').trim().toLowerCase();
  const charset = paramOf(ctype, 'charset');
  if (cte === 'quoted-printable') {
    const joined = rawLines.replace(/=\r?\n/g, '');
    const bytes: number[] = [];
    for (let i = 0; i < joined.length; i++) {
      const c = joined[i]!;
      const hex = c === '=' ? joined.slice(i + 1, i + 3) : '';
      if (hex.length === 2 && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
      }
    }
    return decodeCharset(Buffer.from(bytes), charset);
  }
  if (cte === 'base64') {
    const b64 = rawLines.replace(/[^A-Za-z0-9+/=]/g, '');
    const usable = b64.slice(0, b64.length - (b64.length % 4));
    return decodeCharset(Buffer.from(usable, 'base64'), charset);
  }
  return rawLines;
}
