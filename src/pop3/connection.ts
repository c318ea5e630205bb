// One POP3 connection: the command queue (pipelined in a bounded window or one at a time), reply matching, deadlines, and fatal-error teardown.
//
// Deadlines (budgets and arithmetic in deadline.ts; the timers are armed here):
//  - greeting: absolute, from transport ready until the greeting line is complete;
//  - command: while anything is outstanding, each complete line (status or data) must arrive within
//    commandMs of the previous one; a server trickling bytes without ending lines cannot extend it;
//  - session: absolute, from connect() on; bounds everything, including a server that trickles lines;
//  - reply rate: while a reply is arriving (its first byte seen, its end not yet, input not paused by a stream
//    consumer), fewer than minBytesPerSec * windowMs / 1000 bytes in any windowMs of such time ends the session with
//    ESLOW: a server trickling lines, each within the command deadline, cannot hold a poll to the session deadline.
// A reply over a size limit (see reader.ts) rejects its own command with ELIMIT and the session goes on.
// On any fatal error the socket is destroyed, every queued and outstanding command rejects with that same
// error, and the connection stays closed. Nothing here ever throws from an event handler.
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { Pop3Error } from './errors.js';
import { MAX_COMMAND_OCTETS, QUIT_CLOSE_GRACE_MS } from './limits.js';
import { ReplyReader, type DecodedReply, type ReplyExpectation, type ReplyStatus } from './reader.js';
import { redact, type Logger } from '../log.js';
import type { Pop3Socket } from './transport.js';
import type { SessionDeadline } from './deadline.js';

/**
 * A monotonic clock in ms. Not performance.now(): the first use of the global `performance` makes Node load
 * perf_hooks (+0.2 MiB in an idle `once`, which otherwise never needs it).
 */
const monotonicMs = (): number => process.uptime() * 1000;

export interface CommandSpec extends ReplyExpectation {
  /** Verb used in errors and logs ("TOP"). */
  name: string;
  /** The full command line without CRLF; undefined for the greeting (nothing is written). */
  line?: string;
  /** What the log shows instead of `line` (passwords, SASL payloads masked). */
  logLine?: string;
  /** Must be alone on the wire: sent only when nothing is outstanding, and nothing follows until its reply. */
  barrier?: boolean;
  /** Allow lines longer than RFC 2449's 255 octets (SASL responses, RFC 5034 allows them). */
  longLine?: boolean;
  /** The server closes the connection after replying (QUIT): a close is then not an error. */
  expectClose?: boolean;
  /** Called when the connection fails while this command is outstanding (streams use it). */
  onFatal?: (err: Pop3Error) => void;
}

export interface ConnectionStats {
  bytesIn: number;
  bytesOut: number;
  commands: number;
  roundTrips: number;
  topFallbacks: number;
}

export interface ConnectionOptions {
  maxLineBytes: number;
  maxReplyBytes: number;
  /** The session's time limits: greetingMs, commandMs and the session's end. */
  deadline: SessionDeadline;
  pipelineWindow: number;
  /** Minimum reply rate (see above); bytesPerSec 0 turns the rule off. */
  minReplyRate?: { bytesPerSec: number; windowMs: number } | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
}

interface Pending {
  spec: CommandSpec;
  resolve: (r: DecodedReply) => void;
  reject: (e: Pop3Error) => void;
}

export class Pop3Connection {
  /** While true (inside sendMany), queued commands wait for one pump. */
  private pumpHeld = false;
  /** A pump is queued for the end of this synchronous run (schedulePump). */
  private pumpQueued = false;
  readonly stats: ConnectionStats = { bytesIn: 0, bytesOut: 0, commands: 0, roundTrips: 0, topFallbacks: 0 };
  /** Pipelining allowed right now (server advertised it and the caller allows it). */
  pipelining = false;

  private socket: Pop3Socket;
  private reader: ReplyReader;
  private readonly waiting: Pending[] = [];
  private readonly inflight: Pending[] = [];
  private closedErr: Pop3Error | null = null;
  private ended = false;
  private quitting = false;
  private inputPaused = false;
  private commandTimer: NodeJS.Timeout | null = null;
  /** When the command deadline runs out (monotonicMs()); 0 while it is off. */
  private commandDue = 0;
  private greetingTimer: NodeJS.Timeout | null = null;
  private readonly sessionTimer: NodeJS.Timeout;
  private readonly rate: ReplyRateGuard | null;
  private closeWaiters: Array<() => void> = [];
  private socketClosed = false;
  private readonly onAbort = () => this.fail(new Pop3Error('EABORTED', 'aborted by caller'));
  /** While a read is decoded: when it arrived (monotonicMs()), the time of every line in it; else 0. */
  private readAt = 0;
  /** A complete line was decoded in the current read: the command deadline restarts once, after the read. */
  private lineInRead = false;
  private readonly onSocketData = (chunk: Buffer) => {
    this.stats.bytesIn += chunk.length;
    // The replies completed by this chunk free their places in the pipeline window together: the commands that
    // take them go out in one write (one TLS record), not one write per reply.
    const held = this.pumpHeld;
    this.pumpHeld = true;
    this.readAt = monotonicMs();
    this.lineInRead = false;
    try {
      this.reader.push(chunk);
      if (this.lineInRead) this.armCommandTimer();
    } finally {
      this.pumpHeld = held;
      this.readAt = 0;
    }
    this.pump();
  };
  private readonly onSocketError = (err: Error) => {
    this.fail(new Pop3Error('ECLOSED', `connection lost: ${err.message}`, { cause: err }));
  };
  private readonly onSocketClose = () => {
    this.socketClosed = true;
    if (this.quitting) this.markEnded();
    else this.fail(new Pop3Error('ECLOSED', this.describeClose()));
    const w = this.closeWaiters;
    this.closeWaiters = [];
    for (const f of w) f();
  };

  constructor(
    socket: Pop3Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.socket = socket;
    this.reader = this.newReader();
    this.attach(socket);
    this.sessionTimer = setTimeout(() => this.fail(opts.deadline.timeoutError()), opts.deadline.sessionLeft());
    const r = opts.minReplyRate;
    this.rate = r && r.bytesPerSec > 0 && r.windowMs > 0
      ? new ReplyRateGuard(r.bytesPerSec, r.windowMs, () => !this.closed && this.inflight.length > 0 && !this.inputPaused && !this.reader.idle, () => this.stats.bytesIn, (got, spanMs) => {
          const name = this.inflight[0]?.spec.name ?? 'reply';
          this.fail(new Pop3Error('ESLOW', `${name}: reply slower than ${r.bytesPerSec} bytes/s (${got} bytes in ${Math.round(spanMs / 100) / 10} s of transfer); a server trickling data is cut off`));
        })
      : null;
    if (opts.signal) {
      if (opts.signal.aborted) queueMicrotask(this.onAbort);
      else opts.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  get closed(): boolean {
    return this.closedErr !== null || this.ended;
  }

  /** The error that ended the connection, or null (still open, or ended by QUIT). */
  get fatalError(): Pop3Error | null {
    return this.closedErr;
  }

  get outstanding(): number {
    return this.inflight.length + this.waiting.length;
  }

  /** Wait for the greeting (absolute greeting deadline). */
  readGreeting(): Promise<DecodedReply> {
    const spec: CommandSpec = { name: 'greeting', multiline: false };
    const refused = this.stateRefusal(spec);
    const p = refused ? Promise.reject(refused) : new Promise<DecodedReply>((resolve, reject) => this.enqueue({ spec, resolve, reject }));
    this.greetingTimer = setTimeout(
      () => this.fail(new Pop3Error('ETIMEOUT', `no greeting within ${this.opts.deadline.greetingMs} ms`)),
      this.opts.deadline.greetingMs,
    );
    return p.finally(() => {
      if (this.greetingTimer) clearTimeout(this.greetingTimer);
      this.greetingTimer = null;
    });
  }

  /** Queue several commands at once: those the pipelining rules allow go out in one write (one TLS record). */
  sendMany(specs: CommandSpec[]): Array<Promise<DecodedReply>> {
    this.pumpHeld = true;
    try {
      return specs.map((s) => this.send(s));
    } finally {
      this.pumpHeld = false;
      this.pump();
    }
  }

  /** Queue a command; resolves with its reply ("-ERR" included), rejects only when the connection fails. */
  send(spec: CommandSpec): Promise<DecodedReply> {
    const invalid = this.refusal(spec);
    if (invalid) return Promise.reject(invalid);
    return new Promise<DecodedReply>((resolve, reject) => this.enqueue({ spec, resolve, reject }));
  }

  /**
   * Like send(), without a promise per command (a sweep of a thousand TOPs): `done` gets the reply ("-ERR" included),
   * or the error that failed this command (a reply over its limit) or the connection. A reply is handed over while its
   * read is decoded, so `done` must not throw; an error known at once (closed, invalid) comes a microtask later.
   */
  sendWithCallback(spec: CommandSpec, done: (r: DecodedReply | Pop3Error) => void): void {
    const invalid = this.refusal(spec);
    if (invalid) queueMicrotask(() => done(invalid));
    else this.enqueue({ spec, resolve: done, reject: done });
  }

  /** Why `spec` cannot be queued (argument, length, connection state), or null. */
  private refusal(spec: CommandSpec): Pop3Error | null {
    if (spec.line !== undefined) {
      if (/[\r\n]/.test(spec.line)) return new Pop3Error('EINVALID', `${spec.name}: argument contains CR or LF`);
      if (!spec.longLine && Buffer.byteLength(spec.line) + 2 > MAX_COMMAND_OCTETS) {
        return new Pop3Error('EINVALID', `${spec.name}: command longer than ${MAX_COMMAND_OCTETS} octets`);
      }
    }
    return this.stateRefusal(spec);
  }

  private stateRefusal(spec: CommandSpec): Pop3Error | null {
    if (this.closedErr) return this.closedError();
    if (this.ended || this.quitting) return new Pop3Error('ESTATE', `${spec.name}: session already quit`);
    return null;
  }

  private enqueue(p: Pending): void {
    if (p.spec.line === undefined) {
      this.inflight.push(p);
      this.armCommandTimer();
    } else {
      this.waiting.push(p);
      this.schedulePump();
    }
  }

  private closedError(): Pop3Error {
    const e = this.closedErr!;
    return new Pop3Error('ECLOSED', `connection is closed (${e.code}: ${e.message})`, { cause: e });
  }

  /**
   * Commands queued in one synchronous run (a pipelined TOP sweep, DELE of many) go out together, in one write and
   * one TLS record, at the end of the run (a microtask), not one write each.
   */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /**
   * Write as many queued commands as the pipelining rules allow, in one TCP write. A pipeline is refilled once half
   * its window has been answered, not after every read: a sweep of TOPs is then a few writes (TLS records), not one
   * per read, while the server always has half a window of commands still to answer.
   */
  private pump(): void {
    if (this.pumpHeld || this.closed || this.waiting.length === 0) return;
    const head = this.inflight[this.inflight.length - 1];
    if (head?.spec.barrier) return;
    const window = this.pipelining ? Math.max(1, this.opts.pipelineWindow) : 1;
    if (this.inflight.length > window >> 1) return;
    const lines: string[] = [];
    const idleBefore = this.inflight.length === 0;
    const trace = this.opts.logger.debugEnabled !== false;
    while (this.waiting.length > 0 && this.inflight.length < window) {
      const next = this.waiting[0]!;
      if (next.spec.barrier && this.inflight.length > 0) break;
      this.waiting.shift();
      this.inflight.push(next);
      lines.push(next.spec.line!);
      this.stats.commands++;
      if (trace) this.opts.logger.debug(`C: ${next.spec.logLine ?? next.spec.line!}`);
      if (next.spec.barrier) break;
    }
    if (lines.length === 0) return;
    if (idleBefore) this.stats.roundTrips++;
    const payload = Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
    this.stats.bytesOut += payload.length;
    this.socket.write(payload);
    if (idleBefore) this.armCommandTimer();
  }

  private newReader(): ReplyReader {
    return new ReplyReader(
      { maxLineBytes: this.opts.maxLineBytes, maxReplyBytes: this.opts.maxReplyBytes },
      {
        expectation: () => this.inflight[0]?.spec,
        onLine: () => {
          this.lineInRead = true;
        },
        onReply: (reply) => this.onReply(reply),
        onError: (err) => this.fail(err),
      },
    );
  }

  private onReply(reply: DecodedReply): void {
    const p = this.inflight.shift();
    if (!p) return; // unreachable: the reader asks for an expectation first
    this.logReply(p.spec, reply.status, reply.text, reply.dataBytes);
    if (reply.overLimit) {
      // The reply was read to its end and dropped: only this command fails, the session stays in sync.
      this.opts.logger.debug(`reply over its limit (${reply.overLimit}); dropped, the session goes on`);
      this.armCommandTimer();
      p.reject(new Pop3Error('ELIMIT', `${p.spec.logLine ?? p.spec.line ?? p.spec.name}: ${reply.overLimit}; the rest of the reply was read and dropped`));
      this.pump();
      return;
    }
    if (p.spec.expectClose) this.quitting = true;
    if (p.spec.exclusive && reply.status === '+OK') {
      // STLS: stop reading cleartext right now; the TLS layer takes the socket over.
      this.socket.removeListener('data', this.onSocketData);
      this.socket.pause();
    }
    this.armCommandTimer();
    p.resolve(reply);
    this.pump();
  }

  private logReply(spec: CommandSpec, status: ReplyStatus, text: string, dataBytes: number): void {
    const l = this.opts.logger;
    if (l.debugEnabled === false) return;
    const shown = spec.continuation && status === '+' ? '+ ***' : `${status}${text ? ' ' + text : ''}`;
    l.debug(`S: ${redact(shown)}${spec.multiline && status === '+OK' ? ` (${dataBytes} data bytes)` : ''}`);
  }

  /**
   * Progress (a complete line, a reply, a command sent): the command deadline restarts. Called after every read that
   * completed a line (the lines of one read arrived together: the read's time is theirs) and for every reply, so it
   * only moves the due time; one timer checks it when it fires and sleeps again for what is left.
   */
  private armCommandTimer(): void {
    // Off while nothing is outstanding, input is paused, or for the greeting (its own absolute deadline).
    if (this.closed || this.inflight.length === 0 || this.inputPaused || this.inflight[0]!.spec.line === undefined) {
      this.commandDue = 0;
      if (this.commandTimer) clearTimeout(this.commandTimer);
      this.commandTimer = null;
      return;
    }
    const ms = this.opts.deadline.commandMs;
    this.commandDue = (this.readAt || monotonicMs()) + ms;
    this.commandTimer ??= setTimeout(this.onCommandTimer, ms);
  }

  private readonly onCommandTimer = (): void => {
    this.commandTimer = null;
    if (this.commandDue === 0 || this.closed) return;
    const left = Math.ceil(this.commandDue - monotonicMs());
    if (left > 0) {
      this.commandTimer = setTimeout(this.onCommandTimer, left);
      return;
    }
    const name = this.inflight[0]?.spec.name ?? 'reply';
    this.fail(new Pop3Error('ETIMEOUT', `${name}: no complete reply line within ${this.opts.deadline.commandMs} ms`));
  };

  /** Backpressure from a stream consumer: stop reading (the command deadline is suspended meanwhile). */
  pauseInput(): void {
    if (this.closed || this.inputPaused) return;
    this.inputPaused = true;
    this.socket.pause();
    this.armCommandTimer();
  }

  resumeInput(): void {
    if (!this.inputPaused) return;
    this.inputPaused = false;
    if (this.closed) return;
    this.socket.resume();
    this.armCommandTimer();
  }

  private attach(sock: Pop3Socket): void {
    sock.on('data', this.onSocketData);
    sock.on('error', this.onSocketError);
    sock.on('close', this.onSocketClose);
  }

  /** For STLS: hand the plain socket to the caller for the upgrade; nothing must be outstanding. */
  detachForUpgrade(): net.Socket {
    const sock = this.socket as net.Socket;
    sock.removeListener('data', this.onSocketData);
    sock.removeListener('error', this.onSocketError);
    sock.removeListener('close', this.onSocketClose);
    sock.on('error', () => {});
    return sock;
  }

  /** For STLS: continue on the upgraded socket with a fresh reader. */
  attachUpgraded(sock: tls.TLSSocket): void {
    this.socket = sock;
    this.socketClosed = false;
    this.reader = this.newReader();
    this.attach(sock);
    if (this.closedErr) sock.destroy();
  }

  private describeClose(): string {
    const head = this.inflight[0];
    return head ? `connection closed by server during ${head.spec.name}` : 'connection closed by server';
  }

  /** End the connection with a fatal error: destroy the socket, reject everything pending with `err`. */
  fail(err: Pop3Error): void {
    if (this.closedErr || this.ended) return;
    this.closedErr = err;
    this.opts.logger.debug(`connection failed: ${err.code} ${err.message}`);
    this.teardown();
    this.socket.destroy();
    const all = [...this.inflight, ...this.waiting];
    this.inflight.length = 0;
    this.waiting.length = 0;
    for (const p of all) {
      p.spec.onFatal?.(err);
      p.reject(err);
    }
  }

  private teardown(): void {
    if (this.commandTimer) clearTimeout(this.commandTimer);
    if (this.greetingTimer) clearTimeout(this.greetingTimer);
    clearTimeout(this.sessionTimer);
    this.rate?.stop();
    this.commandTimer = null;
    this.greetingTimer = null;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  private markEnded(): void {
    if (this.ended || this.closedErr) return;
    this.ended = true;
    this.teardown();
    const all = [...this.inflight, ...this.waiting];
    this.inflight.length = 0;
    this.waiting.length = 0;
    const err = new Pop3Error('ECLOSED', 'connection closed after QUIT');
    for (const p of all) {
      p.spec.onFatal?.(err);
      p.reject(err);
    }
  }

  /**
   * Send QUIT and close: resolves with the QUIT reply once the socket is closed (the server closes
   * after its reply; we half-close and destroy after a short grace).
   */
  async quit(spec: CommandSpec): Promise<DecodedReply> {
    const reply = await this.send({ ...spec, barrier: true, expectClose: true });
    await this.closeGracefully();
    return reply;
  }

  /** Half-close and wait for the peer to close, bounded; then destroy. */
  private closeGracefully(): Promise<void> {
    this.quitting = true;
    if (this.socketClosed) {
      this.markEnded();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), QUIT_CLOSE_GRACE_MS);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  /** Abort without QUIT. */
  destroy(err: Pop3Error = new Pop3Error('EABORTED', 'destroyed by caller')): void {
    this.fail(err);
  }
}

/**
 * The minimum reply rate over a sliding window of "transfer time" (time while `active()`): sampled every tenth of
 * the window; an interval counts only when active at both of its ends, so pauses between replies, backpressure from a
 * stream consumer and time the event loop spent elsewhere (capped at two ticks) never count against the server.
 */
class ReplyRateGuard {
  private readonly tickMs: number;
  private readonly timer: NodeJS.Timeout;
  private last = Date.now();
  private activeMs = 0;
  private wasActive = false;
  /** (active time, bytes in) samples, oldest first; the first is the latest one at least a window old. */
  private samples: Array<{ a: number; b: number }> = [];

  constructor(
    private readonly bytesPerSec: number,
    private readonly windowMs: number,
    private readonly active: () => boolean,
    private readonly bytesIn: () => number,
    private readonly onSlow: (got: number, spanMs: number) => void,
  ) {
    this.tickMs = Math.max(20, Math.floor(windowMs / 10));
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  private tick(): void {
    const now = Date.now();
    const dt = Math.min(now - this.last, 2 * this.tickMs);
    this.last = now;
    if (!this.active()) {
      this.wasActive = false;
      return;
    }
    if (this.wasActive) this.activeMs += dt;
    this.wasActive = true;
    const s = this.samples;
    s.push({ a: this.activeMs, b: this.bytesIn() });
    while (s.length > 1 && this.activeMs - s[1]!.a >= this.windowMs) s.shift();
    const span = this.activeMs - s[0]!.a;
    const got = this.bytesIn() - s[0]!.b;
    if (span >= this.windowMs && got < (this.bytesPerSec * span) / 1000) this.onSlow(got, span);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
