// Message fetch commands: TOP (with a RETR fallback when the server has no TOP, or refuses it), pipelined TOP of many messages, RETR buffered or streamed.
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

export interface TopOptions {
  /**
   * Cap on the TOP reply (decoded bytes), and on what the RETR fallback keeps. A larger reply is read to its end and
   * dropped: the call (or that message's entry) fails with ELIMIT and the session goes on. Default: maxReplyBytes.
   */
  maxBytes?: number;
}

/** Receives each message's TOP data (a view: parse or copy it during the call) or its error, as each completes. */
export type TopEachCallback = (msg: number, result: Buffer | Pop3Error) => void;

function topSpec(msg: number, lines: number, cap: number): CommandSpec {
  return { name: 'TOP', line: `TOP ${msg} ${lines}`, multiline: true, maxBytes: cap };
}

function dataOf(r: DecodedReply): Buffer {
  return r.data ?? Buffer.alloc(0);
}

/** RETR a message but keep only what TOP would return (at most `cap` bytes). `onOk` learns that RETR said +OK. */
function emulateTop(ctx: SessionContext, msg: number, lines: number, cap: number, onOk?: () => void): Promise<Buffer> {
  const emu = new TopEmulator(lines, cap);
  return ctx.conn
    .send({ name: 'RETR', line: `RETR ${msg}`, multiline: true, onData: (c) => emu.push(c), onStatus: (st) => st === '+OK' && onOk?.() })
    .then((r) => {
      if (r.status !== '+OK') throw errorFromReply('RETR', r.text);
      if (emu.overflow) throw new Pop3Error('ELIMIT', `RETR ${msg} (for TOP): headers larger than ${cap} bytes; the rest was read and dropped`);
      ctx.conn.stats.topFallbacks++;
      return emu.result();
    });
}

function noteFallback(ctx: SessionContext, why = 'server has no TOP'): void {
  if (ctx.topFallbackLogged) return;
  ctx.topFallbackLogged = true;
  ctx.logger.info(`${why}: emulating it with RETR for the rest of this session, which downloads whole messages`);
}

/**
 * "-ERR" to TOP. It may mean "no such message" or "no TOP here" (a server whose CAPA lists TOP may still refuse it):
 * RETR tells them apart. If RETR works, TOP is taken as unsupported for the rest of the session (remembered in
 * ctx.topSupport, logged once) and this message is served from RETR; if RETR fails too, the TOP error stands.
 */
async function afterTopRefused(ctx: SessionContext, msg: number, lines: number, cap: number, text: string): Promise<Buffer> {
  const topErr = errorFromReply('TOP', text);
  if (ctx.topSupport === 'no') return emulateTop(ctx, msg, lines, cap);
  const claimed = ctx.capabilities?.has('TOP') ?? false;
  let retrOk = false;
  const learn = () => {
    if (ctx.topSupport === 'no') return;
    ctx.topSupport = 'no';
    noteFallback(ctx, claimed ? `server lists TOP but refused it (-ERR ${topErr.serverText ?? ''})` : 'server has no TOP');
  };
  try {
    const data = await emulateTop(ctx, msg, lines, cap, () => {
      retrOk = true;
    });
    learn();
    return data;
  } catch (e) {
    if (retrOk && !ctx.conn.fatalError) learn(); // RETR answered: TOP is what is missing; this message broke a limit
    if (!retrOk && e instanceof Pop3Error && e.code === 'ERR') throw topErr;
    throw e;
  }
}

async function topOnce(ctx: SessionContext, msg: number, lines: number, cap: number): Promise<Buffer> {
  if (ctx.topSupport === 'no') {
    noteFallback(ctx);
    return emulateTop(ctx, msg, lines, cap);
  }
  const r = await ctx.conn.send(topSpec(msg, lines, cap));
  if (r.status === '+OK') {
    ctx.topSupport = 'yes';
    return dataOf(r);
  }
  return afterTopRefused(ctx, msg, lines, cap, r.text);
}

function capOf(ctx: SessionContext, o: TopOptions): number {
  return Math.min(o.maxBytes ?? Infinity, ctx.maxReplyBytes);
}

/** Header block plus `lines` body lines, dot-unstuffed, CRLF line ends, without the terminator. */
export async function top(ctx: SessionContext, msg: number, lines: number, o: TopOptions = {}): Promise<Buffer> {
  ctx.requireState('TOP', TX);
  checkMsg('TOP', msg);
  checkCount('TOP', lines);
  return topOnce(ctx, msg, lines, capOf(ctx, o));
}

/**
 * TOP for many messages, pipelined when allowed. Each reply is handed to `each` as soon as it completes (in reply
 * order; a message served by the RETR fallback comes later) and is not kept: memory holds one reply at a time, never
 * a batch. A "-ERR" or a reply over the cap is that message's Pop3Error and the session goes on; a failure of the
 * connection rejects the whole call (messages not handed out by then got nothing).
 */
export async function topEach(
  ctx: SessionContext,
  msgs: readonly number[],
  lines: number,
  each: TopEachCallback,
  o: TopOptions = {},
): Promise<void> {
  ctx.requireState('TOP', TX);
  for (const m of msgs) checkMsg('TOP', m);
  checkCount('TOP', lines);
  const cap = capOf(ctx, o);
  let rest = msgs;
  if (ctx.topSupport === 'unknown' && msgs.length > 0) {
    // Learn whether TOP works with the first message before pipelining the others.
    const first = await settle(topOnce(ctx, msgs[0]!, lines, cap));
    if (ctx.conn.fatalError) throw ctx.conn.fatalError;
    each(msgs[0]!, first);
    rest = msgs.slice(1);
  }
  if (ctx.topSupport === 'no' && rest.length > 0) noteFallback(ctx);
  if (rest.length > 0) await topSweep(ctx, rest, lines, cap, each);
  if (ctx.conn.fatalError) throw ctx.conn.fatalError;
}

/**
 * The pipelined part of topEach: one promise for the whole sweep, not one chain per message. A "+OK" reply is handed
 * to `each` while its read is decoded; a refused TOP goes through the RETR fallback (a promise, as in top()). Resolves
 * once every message got its result (or the connection failed); rejects with the first error `each` threw.
 */
function topSweep(ctx: SessionContext, msgs: readonly number[], lines: number, cap: number, each: TopEachCallback): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let left = msgs.length;
    let thrown: { err: unknown } | undefined;
    const finish = (m: number, v: Buffer | Pop3Error): void => {
      if (!ctx.conn.fatalError && !thrown) {
        try {
          each(m, v);
        } catch (err) {
          thrown = { err };
        }
      }
      if (--left > 0) return;
      if (thrown) reject(thrown.err);
      else resolve();
    };
    const later = (m: number, p: Promise<Buffer>): void => void settle(p).then((v) => finish(m, v));
    for (const m of msgs) {
      if (ctx.topSupport === 'no') {
        later(m, emulateTop(ctx, m, lines, cap));
        continue;
      }
      ctx.conn.sendWithCallback(topSpec(m, lines, cap), (r) => {
        if (r instanceof Pop3Error) finish(m, r);
        else if (r.status === '+OK') finish(m, dataOf(r));
        else later(m, afterTopRefused(ctx, m, lines, cap, r.text));
      });
    }
  });
}

/**
 * TOP for many messages, collected in a map (each "-ERR" or over-cap reply a Pop3Error). This holds every reply at
 * once: for a poll, use topEach. `onEach` is called for each success as it completes.
 */
export async function topMany(
  ctx: SessionContext,
  msgs: readonly number[],
  lines: number,
  onEach?: (msg: number, data: Buffer) => void,
  o: TopOptions = {},
): Promise<Map<number, Buffer | Pop3Error>> {
  const out = new Map<number, Buffer | Pop3Error>();
  await topEach(ctx, msgs, lines, (m, v) => {
    out.set(m, v);
    if (!(v instanceof Pop3Error)) onEach?.(m, v);
  }, o);
  // Message order, as the map always had.
  return new Map(msgs.filter((m) => out.has(m)).map((m) => [m, out.get(m)!]));
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
  let handedOut = false;
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
        if (status !== '+OK') return;
        handedOut = true;
        resolve(stream);
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
      (err: unknown) => {
        reject(err);
        // After "+OK" the stream is out: a reply over a limit (a line too long) ends it with that error.
        if (handedOut && err instanceof Pop3Error && !conn.fatalError) failLater(err);
      },
    );
  });
}
