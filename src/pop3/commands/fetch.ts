// Message fetch commands: TOP (with a RETR fallback when the server has no TOP), pipelined TOP of many messages, RETR buffered or streamed.
//
// TOP fallback: POP3 has no partial RETR, and closing the connection mid-reply would lose the session
// (and every pending DELE), so the fallback reads the WHOLE message off the wire and keeps only what TOP
// would have returned (header block, blank line, then `lines` body lines). Cost: the full message size in
// bandwidth per call; memory stays bounded by what is kept. It is logged once per session and counted in
// stats.topFallbacks.
import { Readable } from 'node:stream';
import { Pop3Error, errorFromReply } from '../errors.js';
import type { DecodedReply } from '../reader.js';
import type { CommandSpec } from '../connection.js';
import type { SessionContext } from '../session-context.js';
import { checkCount, checkMsg, settle } from './args.js';

const TX = ['TRANSACTION'] as const;

/** Keeps what `TOP n lines` returns out of a full message streamed line by line. */
export class TopEmulator {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private line: Buffer[] = [];
  private inHeaders = true;
  private bodyLeft: number;
  overflow = false;

  constructor(
    lines: number,
    private readonly maxBytes: number,
  ) {
    this.bodyLeft = lines;
  }

  /** Feed CRLF-terminated data (any split); lines are judged whole. */
  push(piece: Buffer): void {
    let pos = 0;
    while (pos < piece.length) {
      const nl = piece.indexOf(0x0a, pos);
      if (nl < 0) {
        this.line.push(piece.subarray(pos));
        return;
      }
      this.line.push(piece.subarray(pos, nl + 1));
      pos = nl + 1;
      const whole = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line);
      this.line = [];
      this.onLine(whole);
    }
  }

  private onLine(line: Buffer): void {
    let keep: boolean;
    if (this.inHeaders) {
      keep = true;
      if (line.length === 2) this.inHeaders = false; // "\r\n": end of the header block
    } else if (this.bodyLeft > 0) {
      keep = true;
      this.bodyLeft--;
    } else keep = false;
    if (!keep || this.overflow) return;
    if (this.keptBytes + line.length > this.maxBytes) {
      this.overflow = true;
      return;
    }
    this.kept.push(line);
    this.keptBytes += line.length;
  }

  result(): Buffer {
    return Buffer.concat(this.kept, this.keptBytes);
  }
}

function topSpec(msg: number, lines: number): CommandSpec {
  return { name: 'TOP', line: `TOP ${msg} ${lines}`, multiline: true };
}

function dataOf(r: DecodedReply): Buffer {
  return r.data ?? Buffer.alloc(0);
}

/** RETR a message but keep only what TOP would return. */
function emulateTop(ctx: SessionContext, msg: number, lines: number): Promise<Buffer> {
  const emu = new TopEmulator(lines, ctx.maxReplyBytes);
  return ctx.conn
    .send({ name: 'RETR', line: `RETR ${msg}`, multiline: true, onData: (c) => emu.push(c) })
    .then((r) => {
      if (r.status !== '+OK') throw errorFromReply('RETR', r.text);
      if (emu.overflow) throw new Pop3Error('ELIMIT', `RETR ${msg}: headers larger than ${ctx.maxReplyBytes} bytes`);
      ctx.conn.stats.topFallbacks++;
      return emu.result();
    });
}

function noteFallback(ctx: SessionContext): void {
  if (ctx.topFallbackLogged) return;
  ctx.topFallbackLogged = true;
  ctx.logger.info('server has no TOP: emulating it with RETR, which downloads whole messages');
}

async function topOnce(ctx: SessionContext, msg: number, lines: number): Promise<Buffer> {
  if (ctx.topSupport === 'no') {
    noteFallback(ctx);
    return emulateTop(ctx, msg, lines);
  }
  const r = await ctx.conn.send(topSpec(msg, lines));
  if (r.status === '+OK') {
    ctx.topSupport = 'yes';
    return dataOf(r);
  }
  const topErr = errorFromReply('TOP', r.text);
  if (ctx.topSupport === 'yes') throw topErr;
  // Unknown (no CAPA): "-ERR" may mean "no TOP" or "no such message". RETR tells them apart.
  let data: Buffer;
  try {
    data = await emulateTop(ctx, msg, lines);
  } catch (e) {
    if (e instanceof Pop3Error && (e.code === 'ERR' || e.code === 'ELIMIT')) throw topErr;
    throw e;
  }
  ctx.topSupport = 'no';
  noteFallback(ctx);
  return data;
}

/** Header block plus `lines` body lines, dot-unstuffed, CRLF line ends, without the terminator. */
export async function top(ctx: SessionContext, msg: number, lines: number): Promise<Buffer> {
  ctx.requireState('TOP', TX);
  checkMsg('TOP', msg);
  checkCount('TOP', lines);
  return topOnce(ctx, msg, lines);
}

/**
 * TOP for many messages, pipelined when allowed. Each "-ERR" becomes a Pop3Error in the map; `onEach` is
 * called (and awaited) in message order for each success. A connection failure rejects the whole call.
 */
export async function topMany(
  ctx: SessionContext,
  msgs: readonly number[],
  lines: number,
  onEach?: (msg: number, data: Buffer) => void | Promise<void>,
): Promise<Map<number, Buffer | Pop3Error>> {
  ctx.requireState('TOP', TX);
  for (const m of msgs) checkMsg('TOP', m);
  checkCount('TOP', lines);
  const out = new Map<number, Buffer | Pop3Error>();
  let rest = msgs;
  if (ctx.topSupport === 'unknown' && msgs.length > 0) {
    // Learn whether TOP works with the first message before pipelining the others.
    const first = await settle(topOnce(ctx, msgs[0]!, lines));
    if (first instanceof Pop3Error && ctx.conn.closed) throw first;
    out.set(msgs[0]!, first);
    if (!(first instanceof Pop3Error) && onEach) await onEach(msgs[0]!, first);
    rest = msgs.slice(1);
  }
  const useTop = ctx.topSupport !== 'no';
  if (!useTop && rest.length > 0) noteFallback(ctx);
  const pending = rest.map((m) =>
    settle(
      useTop
        ? ctx.conn.send(topSpec(m, lines)).then((r) => {
            if (r.status !== '+OK') throw errorFromReply('TOP', r.text);
            return dataOf(r);
          })
        : emulateTop(ctx, m, lines),
    ),
  );
  for (let i = 0; i < rest.length; i++) {
    const v = await pending[i]!;
    if (v instanceof Pop3Error && ctx.conn.fatalError) throw ctx.conn.fatalError;
    out.set(rest[i]!, v);
    if (!(v instanceof Pop3Error) && onEach) await onEach(rest[i]!, v);
  }
  return out;
}

/** Keeps at most maxBytes of streamed data; beyond that the rest is read and dropped. */
class CappedSink {
  chunks: Buffer[] = [];
  bytes = 0;
  overflow = false;
  constructor(private readonly max: number) {}
  push = (c: Buffer): void => {
    if (this.overflow) return;
    if (this.bytes + c.length > this.max) {
      this.overflow = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(c);
    this.bytes += c.length;
  };
}

/**
 * Whole message. Without maxBytes the reply is buffered under the session's maxReplyBytes (beyond it the
 * session ends with ELIMIT). With maxBytes a larger message is read off the wire and dropped, and the
 * call rejects with ELIMIT while the session stays usable.
 */
export async function retr(ctx: SessionContext, msg: number, o: { maxBytes?: number } = {}): Promise<Buffer> {
  ctx.requireState('RETR', TX);
  checkMsg('RETR', msg);
  if (o.maxBytes === undefined) {
    const r = await ctx.conn.send({ name: 'RETR', line: `RETR ${msg}`, multiline: true });
    if (r.status !== '+OK') throw errorFromReply('RETR', r.text);
    return dataOf(r);
  }
  const sink = new CappedSink(o.maxBytes);
  const r = await ctx.conn.send({ name: 'RETR', line: `RETR ${msg}`, multiline: true, onData: sink.push });
  if (r.status !== '+OK') throw errorFromReply('RETR', r.text);
  if (sink.overflow) throw new Pop3Error('ELIMIT', `RETR ${msg}: message larger than ${o.maxBytes} bytes`);
  return Buffer.concat(sink.chunks, sink.bytes);
}

/**
 * Whole message as a stream, resolved when "+OK" arrives. Backpressure pauses the socket (and suspends the
 * command deadline; the session deadline still runs). The stream errors with ELIMIT beyond maxBytes (the
 * rest is read and dropped, the session stays usable) or with the connection's error if it fails. If the
 * consumer destroys the stream early, the rest of the message is read and dropped.
 */
export function retrStream(ctx: SessionContext, msg: number, o: { maxBytes?: number } = {}): Promise<Readable> {
  try {
    ctx.requireState('RETR', TX);
    checkMsg('RETR', msg);
  } catch (e) {
    return Promise.reject(e);
  }
  const conn = ctx.conn;
  const max = o.maxBytes ?? Infinity;
  let bytes = 0;
  let discarding = false;
  // The stream is handed out when "+OK" arrives, but data (and a failure) may follow in the same read,
  // before the caller could attach an 'error' listener: errors are raised one macrotask later.
  const failLater = (err: Pop3Error) => {
    discarding = true;
    setImmediate(() => {
      if (!stream.destroyed) stream.destroy(err);
    });
  };
  const stream = new Readable({
    read() {
      conn.resumeInput();
    },
    destroy(err, cb) {
      discarding = true;
      conn.resumeInput();
      cb(err);
    },
  });
  return new Promise<Readable>((resolve, reject) => {
    const spec: CommandSpec = {
      name: 'RETR',
      line: `RETR ${msg}`,
      multiline: true,
      onStatus: (status) => {
        if (status === '+OK') resolve(stream);
      },
      onData: (chunk) => {
        if (discarding) return;
        bytes += chunk.length;
        if (bytes > max) {
          failLater(new Pop3Error('ELIMIT', `RETR ${msg}: message larger than ${max} bytes`));
          return;
        }
        if (!stream.push(chunk)) conn.pauseInput();
      },
      onFatal: (err) => failLater(err),
    };
    conn.send(spec).then(
      (r) => {
        if (r.status !== '+OK') {
          reject(errorFromReply('RETR', r.text));
          return;
        }
        if (!discarding) stream.push(null);
      },
      (err: unknown) => reject(err),
    );
  });
}
