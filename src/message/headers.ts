// The lightest correct parser for a header block (TOP n 0 output): fields indexed by byte offsets and decoded when asked (unfolding, RFC 2047 words via libmime, addresses, dates).
import type Libmime from 'libmime';
import { isAscii } from 'node:buffer';
import { MessageParseError } from './errors.js';

export interface Address {
  /** Display name, RFC 2047-decoded ('' when none). */
  name: string;
  /** The bare address local@domain as written ('' when the entry has none). */
  address: string;
  localpart: string;
  /** The part after the last '@', lower-cased ('' when none). */
  domain: string;
}

export interface ParsedHeaders {
  /** Decoded (unfolded, RFC 2047) values of every instance of a header, top to bottom; [] when absent. */
  get(name: string): string[];
  /** Unfolded values as written (no RFC 2047 decoding), for structured headers. */
  getRaw(name: string): string[];
  first(name: string): string | undefined;
  has(name: string): boolean;
  /** Header names in order of first appearance, as written. */
  names(): string[];
  subject: string;
  from: Address[];
  to: Address[];
  cc: Address[];
  replyTo: Address[];
  sender: Address[];
  messageId?: string;
  /** Parsed Date header; undefined when missing or unparseable (never "now"). */
  date?: Date;
  dateRaw?: string;
  /** The header block as received (without the blank line that ends it). */
  raw: Buffer;
}

export interface HeaderLimits {
  /** Largest header block accepted (default 256 KiB). */
  maxBytes?: number;
  /** Most header fields accepted (default 1000). */
  maxHeaders?: number;
}

export const DEFAULT_HEADER_LIMITS: Required<HeaderLimits> = { maxBytes: 256 * 1024, maxHeaders: 1000 };

/**
 * Where the header block ends (RFC 5322 section 2.1: at the first empty line; line ends CRLF or bare LF):
 * `headerEnd` is the length of the block (its last line end kept, the empty line not), `bodyStart` the offset just
 * past the empty line; null when `buf` holds no complete block. A message that opens with an empty line has an
 * empty header block and all of it is body. `startsMessage: false` is for a window into the middle of a message
 * (a streaming reader): there a line end at offset 0 ends a header line, not an empty first line.
 */
export function findHeaderEnd(buf: Buffer, startsMessage = true): { headerEnd: number; bodyStart: number } | null {
  if (startsMessage && buf[0] === 0x0a) return { headerEnd: 0, bodyStart: 1 };
  if (startsMessage && buf[0] === 0x0d && buf[1] === 0x0a) return { headerEnd: 0, bodyStart: 2 };
  let i = byteIndexOf.call(buf, 0x0a);
  while (i >= 0 && i + 1 < buf.length) {
    if (buf[i + 1] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 3 };
    i = byteIndexOf.call(buf, 0x0a, i + 1);
  }
  return null;
}

/**
 * V8's own search of a byte array. Buffer.prototype.indexOf does the same through Node's argument checks, whose
 * wrappers allocate on every call until the optimizing compiler is on (compiler-tiers.ts): a header block is
 * searched once per line, so that was most of the garbage of parsing a block.
 */
const byteIndexOf = Uint8Array.prototype.indexOf as (this: Uint8Array, byte: number, from?: number) => number;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode header bytes: UTF-8 when valid (RFC 6532), otherwise Latin-1 so that every byte survives as one character. */
function decodeBytes(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    return b.toString('latin1');
  }
}

let libmime: typeof Libmime | undefined;

/**
 * Loads the RFC 2047 decoder (libmime and its charset tables, about 1 MB of code), once. A poll that finds no new
 * mail never needs it, so it is not loaded with the rest: await this before a decoded value is read from a block
 * for which mayNeedHeaderDecoder() is true (parseHeaders itself decodes nothing).
 */
export async function loadHeaderDecoder(): Promise<void> {
  libmime ??= (await import('libmime')).default;
}

/**
 * Whether decoding this block's header values can need the RFC 2047 decoder: only a value with "=?" does. A poll
 * whose header blocks have none (alarm mail is mostly plain ASCII) never loads it.
 */
export function mayNeedHeaderDecoder(block: Buffer): boolean {
  return block.includes('=?');
}

/** RFC 2047 decoding that never throws: on a broken word the text stays as written. Needs loadHeaderDecoder() first. */
export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value;
  if (!libmime) throw new Error('internal error: header decoding before loadHeaderDecoder()');
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

const FIELD_NAME = /^[!-9;-~]+$/;
/** A byte of 0x80 or more, in Latin-1 text. */
const EIGHT_BIT = /[\x80-\xff]/;
/**
 * A field name as written (printable ASCII but the colon), white space String.trimEnd removes (ASCII), the colon:
 * sticky, tested at the start of a line of the block's Latin-1 text.
 */
const NAME_AND_COLON = /[!-9;-~]+[\t-\r ]*:/y;
/** Offsets of the fields of the block being indexed (copied out at its exact size: no growing array per block). */
const scratchAt: number[] = [];

/** One header field, unfolded: its name as written, the name lower-cased, and the value as written (no RFC 2047 decoding). */
export interface HeaderField { name: string; key: string; raw: string }

/** Parse a header block. Accepts the block alone, or a whole message (parsing stops at the first empty line). */
export function parseHeaders(block: Buffer, limits: HeaderLimits = {}): ParsedHeaders {
  const index = indexFields(block, limits);
  if (index.count === 0 && index.junkLines > 0) {
    throw new MessageParseError('MALFORMED_HEADERS', 'no header field could be parsed');
  }
  return new HeaderSet(index);
}

/**
 * The fields of a header block in order, unfolded and not decoded (so it needs no loadHeaderDecoder()), with the
 * block itself and the count of lines that are no field. Throws only on the size and count limits.
 */
export function headerFields(block: Buffer, limits: HeaderLimits = {}): { fields: HeaderField[]; raw: Buffer; junkLines: number } {
  const index = indexFields(block, limits, false);
  const fields: HeaderField[] = [];
  for (let i = 0; i < index.count; i++) {
    const name = index.name(i);
    fields.push({ name, key: name.toLowerCase(), raw: index.value(i) });
  }
  return { fields, raw: index.raw, junkLines: index.junkLines };
}

const isSpaceOrTab = (b: number) => b === 0x20 || b === 0x09;
/** ASCII characters String.prototype.trimEnd removes (a name is trimmed before it is checked). */
const isAsciiTrimmed = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/**
 * A header block indexed by byte offsets: one pass finds where each field's name and value are, and nothing is
 * decoded into strings until a field is asked for. A poll reads a handful of the 20 to 100 fields of each of
 * thousands of header blocks; turning every line into strings up front cost more time (and garbage) than the
 * rules. The result is the same as decoding every line (UTF-8 when valid, otherwise Latin-1), unfolding and
 * trimming: lines whose field name holds 8-bit bytes are decoded as before, the rest is ASCII in the name.
 */
class FieldIndex {
  /** Per field: offset of its first line, end of its name, offset of its colon, end of its last line (line end excluded). */
  private readonly at: number[];
  /** Names of fields whose name could only be found by decoding their line (8-bit bytes before the colon). */
  private decodedNames?: Map<number, string>;
  count = 0;
  junkLines = 0;

  /** `copy`: hold a copy of the block (so a reply buffer it is a view of can be freed), not a view. */
  constructor(block: Buffer, limits: HeaderLimits, copy: boolean) {
    const maxBytes = limits.maxBytes ?? DEFAULT_HEADER_LIMITS.maxBytes;
    const maxHeaders = limits.maxHeaders ?? DEFAULT_HEADER_LIMITS.maxHeaders;
    // The block ends at its first empty line (findHeaderEnd), found by the same scan that indexes its lines. A limit
    // is reported as if the block had been cut first: too large before too many fields.
    const limitError = (tooMany: boolean): MessageParseError => {
      const end = findHeaderEnd(block);
      const length = end ? end.headerEnd : block.length;
      if (length > maxBytes) return new MessageParseError('HEADER_TOO_LARGE', `header block of ${length} bytes exceeds the limit of ${maxBytes}`);
      return tooMany ? new MessageParseError('TOO_MANY_HEADERS', `more than ${maxHeaders} header fields`) : new MessageParseError('HEADER_TOO_LARGE', `header block exceeds the limit of ${maxBytes}`);
    };
    // The block as Latin-1 text (one character per byte, offsets unchanged) for the name searches below, as far as a
    // block within the limit goes; only offsets are kept, the text is dropped when the index is built.
    const raw = block;
    const text = raw.toString('latin1', 0, Math.min(raw.length, maxBytes + 1));
    const at = scratchAt; // its first `n` entries are this block's (never shortened: setting length frees the storage)
    let n = 0;
    let headerEnd = raw.length;
    let open = false; // a field is open: continuation lines extend it
    let pos = 0;
    let lineNo = 0;
    while (pos < raw.length) {
      if (pos > maxBytes) throw limitError(false); // the block is longer than the limit, wherever it ends
      let nl = byteIndexOf.call(raw, 0x0a, pos);
      if (nl < 0) nl = raw.length;
      let lineEnd = nl;
      if (lineEnd > pos && raw[lineEnd - 1] === 0x0d) lineEnd--;
      const start = pos;
      pos = nl + 1;
      lineNo++;
      if (lineEnd === start) {
        if (nl < raw.length) {
          headerEnd = start; // the empty line that ends the block
          break;
        }
        continue; // a lone CR at the very end
      }
      if (isSpaceOrTab(raw[start]!)) {
        if (open) at[n - 1] = lineEnd;
        else this.junkLines++;
        continue;
      }
      open = false;
      // The common line, "Name: value" with a printable ASCII name: one sticky search instead of a byte loop.
      NAME_AND_COLON.lastIndex = start;
      let colon: number;
      let nameEnd: number;
      let name: string | undefined;
      if (NAME_AND_COLON.test(text) && NAME_AND_COLON.lastIndex <= lineEnd) {
        colon = NAME_AND_COLON.lastIndex - 1;
        nameEnd = colon;
        while (isAsciiTrimmed(raw[nameEnd - 1]!)) nameEnd--; // the name itself has none: stops at its last byte
      } else {
        // Any other line, byte by byte. The name: bytes before the first colon, trailing white space trimmed, then
        // printable ASCII only.
        colon = start;
        let eightBit = false;
        while (colon < lineEnd && raw[colon] !== 0x3a) {
          if (raw[colon]! >= 0x80) eightBit = true;
          colon++;
        }
        nameEnd = colon;
        if (colon === lineEnd) nameEnd = start; // no colon: no field
        else if (eightBit) {
          // Only String.trimEnd() can tell (U+00A0 and other Unicode white space): decode the line as before.
          const line = decodeBytes(raw.subarray(start, lineEnd));
          const n = line.slice(0, line.indexOf(':')).trimEnd();
          if (n && FIELD_NAME.test(n)) name = n;
          else nameEnd = start;
        } else {
          while (nameEnd > start && isAsciiTrimmed(raw[nameEnd - 1]!)) nameEnd--;
          for (let i = start; i < nameEnd; i++) {
            const b = raw[i]!;
            if (b < 0x21 || b > 0x7e) {
              nameEnd = start;
              break;
            }
          }
        }
        if (nameEnd === start && name === undefined) {
          const mbox = lineNo === 1 && lineEnd - start >= 5 && raw.toString('latin1', start, start + 5) === 'From ';
          if (!mbox) this.junkLines++; // an mbox separator line is tolerated
          continue;
        }
      }
      if (this.count >= maxHeaders) throw limitError(true);
      if (name !== undefined) (this.decodedNames ??= new Map()).set(this.count, name);
      at[n] = start;
      at[n + 1] = nameEnd;
      at[n + 2] = colon;
      at[n + 3] = lineEnd;
      n += 4;
      this.count++;
      open = true;
    }
    if (headerEnd > maxBytes) throw limitError(false);
    this.at = at.slice(0, n);
    const view = raw.subarray(0, headerEnd);
    this.ascii = isAscii(view);
    // The Latin-1 text is what the index keeps (not a copy of the bytes). Cut to the block: a slice (which keeps the
    // text it is cut from) when little follows the block (a TOP reply's empty line), else made again at the
    // block's length, so that a body the text ran on into is not kept.
    this.text = text.length - headerEnd <= 1024 ? text.slice(0, headerEnd) : raw.toString('latin1', 0, headerEnd);
    if (!copy) this.rawBytes = view;
  }

  /** The block, one character per byte. */
  private readonly text: string;
  private rawBytes?: Buffer;
  /** The block's bytes (the view given when not copied, else made again from the text on first use). */
  get raw(): Buffer {
    return (this.rawBytes ??= Buffer.from(this.text, 'latin1'));
  }
  /** The block is all ASCII: each value is its bytes as Latin-1 (no per-line decoding). */
  private readonly ascii: boolean;

  /** The field's name as written. */
  name(i: number): string {
    return this.decodedNames?.get(i) ?? this.text.slice(this.at[4 * i]!, this.at[4 * i + 1]!);
  }

  /** Whether field i is called `key` (lower case), compared without making its name a string. */
  is(i: number, key: string): boolean {
    const decoded = this.decodedNames?.get(i);
    if (decoded !== undefined) return decoded.toLowerCase() === key;
    const start = this.at[4 * i]!;
    if (this.at[4 * i + 1]! - start !== key.length) return false;
    for (let k = 0; k < key.length; k++) {
      let b = this.text.charCodeAt(start + k);
      if (b >= 0x41 && b <= 0x5a) b += 0x20;
      if (b !== key.charCodeAt(k)) return false;
    }
    return true;
  }

  /** The value unfolded and trimmed, as written (no RFC 2047 decoding); each line decoded on its own as UTF-8 or Latin-1. */
  value(i: number): string {
    const start = this.at[4 * i]!;
    const colon = this.at[4 * i + 2]!;
    const end = this.at[4 * i + 3]!;
    if (this.ascii || !EIGHT_BIT.test(this.text.slice(colon + 1, end))) {
      const text = this.text.slice(colon + 1, end);
      return (text.includes('\n') ? text.replace(/\r?\n/g, '') : text).trim();
    }
    const bytes = Buffer.from(this.text.slice(start, end), 'latin1'); // the field's lines, offsets from `start`
    let out = '';
    let pos = 0;
    while (pos < bytes.length) {
      let nl = byteIndexOf.call(bytes, 0x0a, pos);
      let lineEnd = bytes.length; // the last line: its line end is already left out
      if (nl >= 0) {
        lineEnd = nl > pos && bytes[nl - 1] === 0x0d ? nl - 1 : nl;
      } else nl = bytes.length;
      const line = decodeBytes(bytes.subarray(pos, lineEnd));
      out += pos === 0 ? line.slice(line.indexOf(':') + 1) : line;
      pos = nl + 1;
    }
    return out.trim();
  }
}

function indexFields(block: Buffer, limits: HeaderLimits, copy = true): FieldIndex {
  return new FieldIndex(block, limits, copy);
}

/**
 * The parsed header block. Only what is asked for is decoded (and then kept): the subject, an address list, a
 * header by name. Nothing here throws after parseHeaders() returned.
 */
class HeaderSet implements ParsedHeaders {
  // Made on first use: most blocks are asked for two or three fields, many for none beyond what a rule reads.
  private byKey?: Map<string, number[]>;
  private rawValues?: Map<number, string>;
  private decoded?: Map<string, string[]>;
  private lazy: {
    subject?: string; from?: Address[]; to?: Address[]; cc?: Address[]; replyTo?: Address[]; sender?: Address[];
    messageId?: string | null; date?: Date | null; dateRaw?: string | null;
  } = {};

  constructor(private readonly index: FieldIndex) {}

  get raw(): Buffer {
    return this.index.raw;
  }
  get subject(): string {
    return (this.lazy.subject ??= this.first('subject') ?? '');
  }
  get from(): Address[] {
    return (this.lazy.from ??= this.addresses('from'));
  }
  get to(): Address[] {
    return (this.lazy.to ??= this.addresses('to'));
  }
  get cc(): Address[] {
    return (this.lazy.cc ??= this.addresses('cc'));
  }
  get replyTo(): Address[] {
    return (this.lazy.replyTo ??= this.addresses('reply-to'));
  }
  get sender(): Address[] {
    return (this.lazy.sender ??= this.addresses('sender'));
  }
  get messageId(): string | undefined {
    if (this.lazy.messageId === undefined) this.lazy.messageId = this.getRaw('message-id')[0]?.trim() ?? null;
    return this.lazy.messageId ?? undefined;
  }
  get dateRaw(): string | undefined {
    if (this.lazy.dateRaw === undefined) this.lazy.dateRaw = this.getRaw('date')[0] ?? null;
    return this.lazy.dateRaw ?? undefined;
  }
  get date(): Date | undefined {
    if (this.lazy.date === undefined) {
      const d = this.dateRaw;
      this.lazy.date = d === undefined ? null : (parseMailDate(d) ?? null);
    }
    return this.lazy.date ?? undefined;
  }

  get(name: string): string[] {
    const key = name.toLowerCase();
    let v = this.decoded?.get(key);
    if (!v) {
      v = this.getRaw(key).map(decodeWords);
      (this.decoded ??= new Map()).set(key, v);
    }
    return v;
  }
  getRaw(name: string): string[] {
    return this.fieldsOf(name.toLowerCase()).map((i) => this.rawValue(i));
  }
  first(name: string): string | undefined {
    return this.get(name)[0];
  }
  has(name: string): boolean {
    return this.fieldsOf(name.toLowerCase()).length > 0;
  }
  names(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (let i = 0; i < this.index.count; i++) {
      const name = this.index.name(i);
      const key = name.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(name);
    }
    return out;
  }
  private fieldsOf(key: string): number[] {
    let list = this.byKey?.get(key);
    if (!list) {
      list = [];
      for (let i = 0; i < this.index.count; i++) if (this.index.is(i, key)) list.push(i);
      (this.byKey ??= new Map()).set(key, list);
    }
    return list;
  }
  private rawValue(i: number): string {
    let v = this.rawValues?.get(i);
    if (v === undefined) {
      v = this.index.value(i);
      (this.rawValues ??= new Map()).set(i, v);
    }
    return v;
  }
  private addresses(key: string): Address[] {
    const fields = this.fieldsOf(key);
    if (fields.length === 1) return parseAddressList(this.rawValue(fields[0]!)); // the usual case: one From, one To
    return fields.flatMap((i) => parseAddressList(this.rawValue(i)));
  }
}

/** Remove RFC 5322 comments (nested parentheses), respecting quoted strings; returns the text and the comments. */
export function stripComments(s: string): { text: string; comments: string[] } {
  if (!s.includes('(')) return { text: s, comments: [] }; // no comment can open: the text is all of it
  let text = '';
  const comments: string[] = [];
  let depth = 0;
  let cur = '';
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (depth === 0) {
      if (inQuote) {
        text += ch;
        if (ch === '\\' && i + 1 < s.length) text += s[++i];
        else if (ch === '"') inQuote = false;
      } else if (ch === '"') {
        inQuote = true;
        text += ch;
      } else if (ch === '(') {
        depth = 1;
        cur = '';
      } else {
        text += ch;
      }
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
    } else if (ch === '(') {
      depth++;
      cur += ch;
    } else if (ch === ')') {
      depth--;
      if (depth === 0) {
        comments.push(cur);
        text += ' ';
      } else cur += ch;
    } else {
      cur += ch;
    }
  }
  if (depth > 0) comments.push(cur);
  return { text, comments };
}

function unquote(s: string): string {
  if (!s.includes('"')) return s; // a backslash is an escape only inside quotes
  let out = '';
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (inQuote && ch === '\\' && i + 1 < s.length) out += s[++i];
    else if (ch === '"') inQuote = !inQuote;
    else out += ch;
  }
  return out;
}

function withoutFinalDot(domain: string): string {
  return domain.endsWith('.') ? domain.slice(0, -1) : domain;
}

function makeAddress(name: string, address: string): Address {
  const at = address.lastIndexOf('@');
  return {
    name,
    address,
    localpart: at >= 0 ? address.slice(0, at) : address,
    domain: at >= 0 ? withoutFinalDot(address.slice(at + 1).toLowerCase()) : '',
  };
}

/**
 * Parse an address-list header value (raw, not RFC 2047-decoded, so encoded words cannot inject "<", "," or "@").
 * Tolerant: groups ("team: a@x, b@y;") are flattened, comments dropped (or used as the name in "a@x (Name)").
 */
export function parseAddressList(value: string): Address[] {
  const out: Address[] = [];
  // The common case ("Name <a@b>", "a@b"): no quote, comment, list or group, so the value is one chunk as it is.
  const chunks = /["(,;:]/.test(value) ? splitMailboxes(stripComments(value).text) : [value];
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c]!.trim();
    if (!chunk) continue;
    const lt = chunk.lastIndexOf('<');
    if (lt >= 0) {
      const gt = chunk.indexOf('>', lt);
      const address = chunk.slice(lt + 1, gt >= 0 ? gt : undefined).trim().replace(/^@[^:]*:/, ''); // drop obsolete route
      const name = decodeWords(unquote(chunk.slice(0, lt)).replace(/\s+/g, ' ').trim());
      out.push(makeAddress(name, address));
    } else {
      // bare address, maybe with a comment as the name (comments were removed from `text`: recover them per chunk)
      const bare = unquote(chunk).trim();
      if (bare.includes('@') && !/\s/.test(bare)) {
        const commentName = stripComments(valueChunkWithComments(value, bare)).comments.join(' ').trim();
        out.push(makeAddress(decodeWords(commentName), bare));
      } else {
        out.push(makeAddress(decodeWords(bare.replace(/\s+/g, ' ')), ''));
      }
    }
  }
  return out;
}

/** Split an address list (comments removed) into mailbox chunks at top-level , ; and group-opening :. */
function splitMailboxes(text: string): string[] {
  const chunks: string[] = [];
  let cur = '';
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuote) {
      cur += ch;
      if (ch === '\\' && i + 1 < text.length) cur += text[++i];
      else if (ch === '"') inQuote = false;
      continue;
    }
    if (ch === '"') inQuote = true;
    else if (ch === '<') inAngle = true;
    else if (ch === '>') inAngle = false;
    else if (!inAngle && (ch === ',' || ch === ';')) {
      chunks.push(cur);
      cur = '';
      continue;
    } else if (!inAngle && ch === ':' && !cur.includes('@')) {
      cur = ''; // group name: drop it
      continue;
    }
    cur += ch;
  }
  chunks.push(cur);
  return chunks;
}

/** Find the original text around a bare address so its trailing "(Name)" comment can be used as display name. */
function valueChunkWithComments(value: string, bare: string): string {
  const i = value.indexOf(bare);
  if (i < 0) return '';
  const rest = value.slice(i + bare.length);
  const m = /^\s*\((?:[^()\\]|\\.)*\)/.exec(rest);
  return m ? m[0] : '';
}

/** Format an address as "Name <addr>" (or just the address) for full-form matching and alerts. */
export function formatAddress(a: Address): string {
  if (!a.address) return a.name;
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
const ZONES: Record<string, number> = { ut: 0, utc: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420 };

/**
 * Parse an RFC 5322 date (with obsolete forms: 2-digit years, named zones, comments) or an ISO 8601 timestamp.
 * Returns undefined for anything else or for out-of-range fields: an unknown date is never replaced by "now".
 */
export function parseMailDate(value: string): Date | undefined {
  const s = stripComments(value).text.replace(/\s+/g, ' ').trim();
  const m = /^(?:[A-Za-z]{2,9},? ?)?(\d{1,2}) ?-?([A-Za-z]{3})[A-Za-z]*\.? ?-?(\d{2,4}),? (\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)? ?([+-]\d{4}|[+-]\d{2}:\d{2}|[A-Za-z]{1,5})?$/.exec(s);
  if (m) {
    const day = Number(m[1]);
    const month = MONTHS[m[2]!.toLowerCase()];
    let year = Number(m[3]);
    if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
    else if (m[3]!.length === 3) year += 1900;
    const hour = Number(m[4]);
    const minute = Number(m[5]);
    const second = m[6] ? Number(m[6]) : 0;
    if (month === undefined || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
    let offset = 0;
    const z = m[7];
    if (z && /^[+-]/.test(z)) {
      const digits = z.replace(':', '');
      const hh = Number(digits.slice(1, 3));
      const mm = Number(digits.slice(3, 5));
      if (hh > 23 || mm > 59) return undefined;
      offset = (z[0] === '-' ? -1 : 1) * (hh * 60 + mm);
    } else if (z) {
      offset = ZONES[z.toLowerCase()] ?? 0; // unknown and military zones mean -0000 (RFC 5322 4.3)
    }
    const t = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
    const check = new Date(t);
    if (check.getUTCDate() !== day || check.getUTCMonth() !== month) return undefined; // e.g. 31 Feb
    return new Date(t - offset * 60_000);
  }
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(s)) {
    const t = Date.parse(s.replace(' ', 'T'));
    return Number.isNaN(t) ? undefined : new Date(t);
  }
  return undefined;
}
