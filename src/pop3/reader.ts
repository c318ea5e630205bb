// Incremental, binary-safe POP3 reply decoder: splits bytes into lines and multi-line replies, whatever the chunking, with size caps.
//
// Input may be split at any byte (inside CRLF, inside the ".\r\n" terminator, between the two dots of a
// stuffed line); the output is the same as for unsplit input. Tolerances, on read only:
//  - a bare LF ends a line like CRLF does; data lines are always handed out with CRLF;
//  - a CR that is not directly before LF is data and passes through untouched, as do NUL and 8-bit bytes;
//  - "+OK" / "-ERR" are matched case-insensitively.
// A data line that starts with "." has that dot removed (RFC 1939 byte-stuffing); a line that is exactly
// "." ends the reply. A server that forgets to stuff a lone "." therefore ends the reply early, and what
// follows is then read as the next status line (EPROTOCOL unless it happens to be one).
//
// Limits inside a multi-line reply fail that reply only: a data line longer than maxLineBytes, or data beyond the
// reply's cap (ReplyExpectation.maxBytes, or maxReplyBytes when buffered), marks the reply over its limit; the rest
// of it is read and dropped up to its terminator (nothing more is kept or handed to onData) and the reply completes
// with `overLimit` set, so the session stays in sync and goes on. A status line over maxLineBytes cannot be
// delimited and ends the session (ELIMIT).
import { Pop3Error } from './errors.js';

export type ReplyStatus = '+OK' | '-ERR' | '+';

export interface ReplyExpectation {
  /** "+OK" to this command is followed by dot-terminated data lines. */
  multiline: boolean;
  /** A SASL continuation ("+ base64") is a valid reply. */
  continuation?: boolean;
  /** Nothing may follow this reply until unseal() (STLS): further bytes fail with ESTLS_INJECTION. */
  exclusive?: boolean;
  /** Called once the status line is known, before any data line. */
  onStatus?: (status: ReplyStatus, text: string) => void;
  /**
   * Receives the data, unstuffed, in pieces of one or more whole CRLF-terminated lines (views of the bytes read: copy
   * what is kept past the call). When absent, data is buffered under maxReplyBytes.
   */
  onData?: (chunk: Buffer) => void;
  /** Cap on this reply's data (decoded bytes; with onData too): beyond it the reply is over its limit. */
  maxBytes?: number;
}

export interface DecodedReply {
  status: ReplyStatus;
  /** Status text after "+OK " / "-ERR " / "+ ". */
  text: string;
  /** Buffered data of a multi-line "+OK" reply (undefined when single-line or streamed). */
  data?: Buffer;
  /** Decoded data bytes of a multi-line reply (also counted when streamed, and when dropped over a limit). */
  dataBytes: number;
  /** Set when the reply broke a limit: what was broken. Its data was read to the terminator and dropped. */
  overLimit?: string;
}

export interface ReaderHooks {
  /** The expectation of the oldest outstanding command, or undefined when nothing is outstanding. */
  expectation(): ReplyExpectation | undefined;
  /** A reply is complete; the owner must drop the head expectation synchronously. */
  onReply(reply: DecodedReply): void;
  /** The decoder failed; the session is no longer in sync and must end. Called at most once. */
  onError(err: Pop3Error): void;
  /** A complete line arrived (progress for the command deadline). */
  onLine?(): void;
}

export interface ReaderLimits {
  maxLineBytes: number;
  maxReplyBytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
/** The typed array's own indexOf: the same search as Buffer's, without its argument handling (a few times faster per call). */
const byteIndexOf = Uint8Array.prototype.indexOf;

interface InData {
  exp: ReplyExpectation;
  text: string;
  chunks: Buffer[];
  bytes: number;
  /** Cap on `bytes` for this reply. */
  max: number;
  /** The limit this reply broke; its data is dropped from then on. */
  overLimit?: string;
}

/** Whether buf[start, start + len) is `word` (case-insensitive), alone or followed by a space. */
function startsWithWord(buf: Buffer, start: number, len: number, word: string): boolean {
  if (len < word.length) return false;
  for (let i = 0; i < word.length; i++) {
    let c = buf[start + i]!;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== word.charCodeAt(i)) return false;
  }
  return len === word.length || buf[start + word.length] === 0x20;
}

function preview(buf: Buffer): string {
  return JSON.stringify(buf.subarray(0, 60).toString('latin1'));
}

export class ReplyReader {
  private partial: Buffer[] = [];
  private partialLen = 0;
  private current: InData | null = null;
  private failed = false;
  private sealed = false;
  /** Dropping the rest of an over-long data line until its LF. */
  private skippingLine = false;
  /**
   * A buffered reply's data line that a read ended inside of: how many of its bytes were already taken as data (0: the
   * next byte starts a line). Its start was checked (no dot); its length and line end are checked when its LF comes.
   */
  private openLineBytes = 0;
  /** The last byte taken of that open line was a CR (its LF may start the next read). */
  private openLineCR = false;

  constructor(
    private readonly limits: ReaderLimits,
    private readonly hooks: ReaderHooks,
  ) {}

  /** True when no partial line or unfinished multi-line reply is held. */
  get idle(): boolean {
    return this.partialLen === 0 && this.current === null && !this.skippingLine;
  }

  get hasFailed(): boolean {
    return this.failed;
  }

  /** Accept bytes again after an exclusive reply (STLS) once the transport was replaced. */
  unseal(): void {
    this.sealed = false;
  }

  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    if (this.sealed) {
      this.fail(new Pop3Error('ESTLS_INJECTION', 'server sent data after +OK to STLS before the TLS handshake'));
      return;
    }
    let pos = 0;
    // Start of a run of plain data lines (CRLF-terminated, not starting with ".") of the current multi-line reply,
    // delivered as one piece: a RETR of megabytes is then a few pieces per read, not one Buffer per 78-byte line.
    let run = -1;
    const maxLine = this.limits.maxLineBytes;
    while (pos < chunk.length) {
      const nl: number = byteIndexOf.call(chunk, LF, pos);
      if (this.skippingLine) {
        if (nl < 0) return;
        this.skippingLine = false;
        this.hooks.onLine?.();
        pos = nl + 1;
        continue;
      }
      if (this.openLineBytes > 0) {
        // The rest of a buffered reply's data line begun in an earlier read (its first bytes are data already).
        const cur = this.current!;
        const taken = this.openLineBytes;
        const end = nl < 0 ? chunk.length : nl;
        const cr = end > pos ? chunk[end - 1] === CR : this.openLineCR;
        // Without its LF yet, the line may hold maxLineBytes of content plus a CR still waiting for its LF.
        const over = nl < 0 ? taken + end - pos > this.limits.maxLineBytes + 1 : taken + end - pos - (cr ? 1 : 0) > this.limits.maxLineBytes;
        if (over) {
          // As for a line held whole: the reply is over its limit, the rest of the line is dropped.
          this.openLineBytes = 0;
          this.markOverLimit(cur, this.lineTooLong());
          if (nl < 0) {
            this.skippingLine = true;
            return;
          }
          this.hooks.onLine?.();
          cur.bytes += nl + 1 - pos;
          pos = nl + 1;
          continue;
        }
        if (nl < 0) {
          this.openLineBytes = taken + chunk.length - pos;
          this.openLineCR = cr;
          this.flushRun(chunk, pos, chunk.length, false);
          return;
        }
        this.openLineBytes = 0;
        if (cr) {
          run = pos; // the line ends in CRLF: the start of this read's run
        } else {
          // A bare LF ends it: data lines are handed out with CRLF.
          if (!this.flushRun(chunk, pos, nl)) return;
          this.deliver(cur, CRLF);
          if (this.failed) return;
        }
        pos = nl + 1;
        continue;
      }
      if (nl < 0) {
        const rest = chunk.length - pos;
        const cur = this.current;
        if (cur && !cur.exp.onData && this.partialLen === 0 && chunk[pos] !== DOT && rest <= this.limits.maxLineBytes) {
          // A buffered reply's data line that goes on in the next read: its bytes are data already (one piece with
          // the run before it, no copy of the line), its length and end are checked when its LF comes. Not for
          // streamed replies: onData gets whole lines.
          this.openLineBytes = rest;
          this.openLineCR = chunk[chunk.length - 1] === CR;
          if (run >= 0) this.flushRun(chunk, run, chunk.length);
          else this.flushRun(chunk, pos, chunk.length, false);
          return;
        }
        if (run >= 0 && !this.flushRun(chunk, run, pos)) return;
        // A line may hold maxLineBytes of content plus a CR still waiting for its LF.
        if (this.partialLen + rest > this.limits.maxLineBytes + 1) {
          if (this.current) {
            // Inside a multi-line reply: this reply is over its limit; drop the line up to its LF and go on.
            this.markOverLimit(this.current, this.lineTooLong());
            this.partial = [];
            this.partialLen = 0;
            this.skippingLine = true;
            return;
          }
          this.fail(new Pop3Error('ELIMIT', this.lineTooLong()));
          return;
        }
        this.partial.push(chunk.subarray(pos));
        this.partialLen += rest;
        return;
      }
      if (this.partialLen === 0 && this.current && chunk[pos] !== DOT && nl > pos && chunk[nl - 1] === CR && nl - 1 - pos <= maxLine) {
        if (run < 0) run = pos;
        pos = nl + 1;
        // The lines after it while they are plain CRLF data lines too: one search per line, nothing else (the line
        // that ends the run is looked at again above).
        while (pos < chunk.length && chunk[pos] !== DOT) {
          const next: number = byteIndexOf.call(chunk, LF, pos);
          if (next <= pos || chunk[next - 1] !== CR || next - 1 - pos > maxLine) break;
          pos = next + 1;
        }
        continue;
      }
      if (run >= 0) {
        if (!this.flushRun(chunk, run, pos)) return;
        run = -1;
      }
      if (this.partialLen > 0) {
        this.partial.push(chunk.subarray(pos, nl + 1));
        const line = Buffer.concat(this.partial, this.partialLen + nl + 1 - pos);
        this.partial = [];
        this.partialLen = 0;
        this.handleLine(line, 0, line.length);
      } else {
        this.handleLine(chunk, pos, nl + 1);
      }
      pos = nl + 1;
      if (this.failed) return;
      if (this.sealed && pos < chunk.length) {
        this.fail(new Pop3Error('ESTLS_INJECTION', 'server sent data after +OK to STLS before the TLS handshake'));
        return;
      }
    }
    if (run >= 0) this.flushRun(chunk, run, pos);
  }

  /**
   * Deliver chunk[start, end), plain data lines of the current reply (whole ones, and for a buffered reply maybe the
   * start of one the next read ends: `lineEnded` false); false when that failed the decoder.
   */
  private flushRun(chunk: Buffer, start: number, end: number, lineEnded = true): boolean {
    if (lineEnded) this.hooks.onLine?.();
    this.deliver(this.current!, chunk.subarray(start, end));
    return !this.failed;
  }

  /** Fail the decoder from outside (e.g. connection closed); pending state is dropped. */
  private fail(err: Pop3Error): void {
    if (this.failed) return;
    this.failed = true;
    this.skippingLine = false;
    this.openLineBytes = 0;
    this.partial = [];
    this.partialLen = 0;
    this.current = null;
    this.hooks.onError(err);
  }

  private lineTooLong(): string {
    return `line longer than ${this.limits.maxLineBytes} bytes`;
  }

  private markOverLimit(cur: InData, why: string): void {
    if (cur.overLimit) return;
    cur.overLimit = why;
    cur.chunks = [];
  }

  /** The line buf[start, end): it ends with its LF (and CR when present). */
  private handleLine(buf: Buffer, start: number, end: number): void {
    const crlf = end - start >= 2 && buf[end - 2] === CR;
    const contentLen = end - start - (crlf ? 2 : 1);
    const cur = this.current;
    if (contentLen > this.limits.maxLineBytes) {
      if (!cur) {
        this.fail(new Pop3Error('ELIMIT', this.lineTooLong()));
        return;
      }
      this.hooks.onLine?.();
      this.markOverLimit(cur, this.lineTooLong());
      cur.bytes += end - start;
      return;
    }
    this.hooks.onLine?.();
    if (cur) {
      if (contentLen === 1 && buf[start] === DOT) {
        this.current = null;
        const reply: DecodedReply = { status: '+OK', text: cur.text, dataBytes: cur.bytes };
        if (cur.overLimit) reply.overLimit = cur.overLimit;
        else if (!cur.exp.onData) reply.data = cur.chunks.length === 1 ? cur.chunks[0]! : Buffer.concat(cur.chunks, cur.bytes);
        this.complete(cur.exp, reply);
        return;
      }
      const from = contentLen > 0 && buf[start] === DOT ? start + 1 : start;
      if (crlf) this.deliver(cur, buf.subarray(from, end));
      else {
        this.deliver(cur, buf.subarray(from, end - 1));
        if (!this.failed) this.deliver(cur, CRLF);
      }
      return;
    }
    const exp = this.hooks.expectation();
    if (!exp) {
      this.fail(new Pop3Error('EPROTOCOL', `reply received while no command was outstanding: ${preview(buf.subarray(start, start + contentLen))}`));
      return;
    }
    let status: ReplyStatus;
    let textStart: number;
    if (startsWithWord(buf, start, contentLen, '+OK')) {
      status = '+OK';
      textStart = 4;
    } else if (startsWithWord(buf, start, contentLen, '-ERR')) {
      status = '-ERR';
      textStart = 5;
    } else if (exp.continuation && startsWithWord(buf, start, contentLen, '+')) {
      status = '+';
      textStart = 2;
    } else {
      this.fail(new Pop3Error('EPROTOCOL', `malformed status line: ${preview(buf.subarray(start, start + contentLen))}`));
      return;
    }
    const text = contentLen > textStart ? buf.toString('utf8', start + textStart, start + contentLen) : '';
    exp.onStatus?.(status, text);
    if (this.failed) return;
    if (status === '+OK' && exp.multiline) {
      this.current = { exp, text, chunks: [], bytes: 0, max: Math.min(exp.maxBytes ?? Infinity, exp.onData ? Infinity : this.limits.maxReplyBytes) };
      return;
    }
    this.complete(exp, { status, text, dataBytes: 0 });
  }

  private deliver(cur: InData, piece: Buffer): void {
    if (piece.length === 0) return;
    cur.bytes += piece.length;
    if (cur.overLimit) return;
    if (cur.bytes > cur.max) {
      this.markOverLimit(cur, `reply larger than ${cur.max} bytes`);
      return;
    }
    if (cur.exp.onData) {
      cur.exp.onData(piece);
      return;
    }
    cur.chunks.push(piece);
  }

  private complete(exp: ReplyExpectation, reply: DecodedReply): void {
    if (exp.exclusive && reply.status === '+OK') this.sealed = true;
    this.hooks.onReply(reply);
  }
}
