// A minimal raw-socket POP3 session, independent of src/pop3, used by the bench to measure reference reply sizes (TOP n 0 bound, RETR bytes) and by tests as "another client".
import net from 'node:net';
import tls from 'node:tls';

export interface RawReply {
  /** Status line without CRLF, e.g. "+OK 2 320". */
  status: string;
  ok: boolean;
  /** Bytes of the whole reply on the wire (status line, body lines with dot-stuffing, terminator). */
  bytes: number;
  /** Body of a multi-line reply, un-stuffed, lines joined with CRLF (no terminator); empty for single-line replies. */
  body: Buffer;
}

export interface RawSessionOptions {
  host: string;
  port: number;
  /** Implicit TLS with this CA (PEM file contents); plaintext when absent. */
  ca?: Buffer;
  timeoutMs?: number;
}

/**
 * One POP3 connection. Commands are written immediately (pipelined); replies are matched in order, and the caller says
 * per command whether the reply is multi-line when positive (TOP, RETR, UIDL/LIST without argument, CAPA).
 */
export class RawPop3 {
  private buf: Buffer = Buffer.alloc(0);
  private queue: Array<{ multi: boolean; resolve: (r: RawReply) => void; reject: (e: Error) => void }> = [];
  private greetingWaiter: { resolve: (r: RawReply) => void; reject: (e: Error) => void } | null = null;
  private closedError: Error | null = null;
  private timer: NodeJS.Timeout;
  /** Bytes received from / sent to the server on this connection (plaintext, including greeting and login). */
  bytesIn = 0;
  bytesOut = 0;

  private constructor(private readonly sock: net.Socket, timeoutMs: number) {
    this.timer = setTimeout(() => this.fail(new Error(`raw POP3 session exceeded ${timeoutMs} ms`)), timeoutMs);
    this.timer.unref();
    sock.on('data', (d: Buffer) => {
      this.bytesIn += d.length;
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.drain();
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('connection closed')));
  }

  static async connect(o: RawSessionOptions): Promise<{ session: RawPop3; greeting: RawReply }> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = o.ca
        ? tls.connect({ host: o.host, port: o.port, ca: o.ca, servername: 'localhost' }, () => resolve(s))
        : net.connect({ host: o.host, port: o.port }, () => resolve(s));
      s.once('error', reject);
    });
    const session = new RawPop3(sock, o.timeoutMs ?? 120_000);
    const greeting = await new Promise<RawReply>((resolve, reject) => {
      session.greetingWaiter = { resolve, reject };
      session.drain();
    });
    if (!greeting.ok) throw new Error(`server greeting: ${greeting.status}`);
    return { session, greeting };
  }

  /** Connect and log in with USER/PASS (plaintext; the test servers trust loopback). */
  static async login(o: RawSessionOptions & { user: string; pass: string }): Promise<RawPop3> {
    const { session } = await RawPop3.connect(o);
    const [u, p] = await Promise.all([session.command(`USER ${o.user}`), session.command(`PASS ${o.pass}`)]);
    if (!u!.ok || !p!.ok) {
      session.destroy();
      throw new Error(`login failed: ${u!.status} / ${p!.ok ? '+OK' : '-ERR (password rejected)'}`);
    }
    return session;
  }

  /** Send one command; resolves with its reply. */
  command(line: string, multi = false): Promise<RawReply> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<RawReply>((resolve, reject) => {
      this.queue.push({ multi, resolve, reject });
      const data = Buffer.from(`${line}\r\n`, 'latin1');
      this.bytesOut += data.length;
      this.sock.write(data);
    });
  }

  /** Pipeline many commands (in windows, to bound memory and socket buffers); replies in order. */
  async many(lines: string[], multi: boolean, window = 64): Promise<RawReply[]> {
    const out: RawReply[] = [];
    for (let i = 0; i < lines.length; i += window) {
      out.push(...(await Promise.all(lines.slice(i, i + window).map((l) => this.command(l, multi)))));
    }
    return out;
  }

  async quit(): Promise<RawReply> {
    const r = await this.command('QUIT');
    clearTimeout(this.timer);
    await new Promise<void>((resolve) => {
      if (this.sock.destroyed) return resolve();
      this.sock.once('close', () => resolve());
      this.sock.end();
    });
    return r;
  }

  destroy(): void {
    clearTimeout(this.timer);
    this.sock.destroy();
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    clearTimeout(this.timer);
    this.greetingWaiter?.reject(e);
    for (const q of this.queue.splice(0)) q.reject(e);
    this.sock.destroy();
  }

  private drain(): void {
    for (;;) {
      const nl = this.buf.indexOf('\r\n');
      if (nl < 0) return;
      if (this.greetingWaiter) {
        const status = this.buf.subarray(0, nl).toString('latin1');
        const w = this.greetingWaiter;
        this.greetingWaiter = null;
        this.buf = this.buf.subarray(nl + 2);
        w.resolve({ status, ok: status.startsWith('+OK'), bytes: nl + 2, body: Buffer.alloc(0) });
        continue;
      }
      const head = this.queue[0];
      if (!head) return;
      const status = this.buf.subarray(0, nl).toString('latin1');
      const ok = status.startsWith('+OK');
      if (!ok || !head.multi) {
        this.queue.shift();
        this.buf = this.buf.subarray(nl + 2);
        head.resolve({ status, ok, bytes: nl + 2, body: Buffer.alloc(0) });
        continue;
      }
      // Multi-line: complete once "\r\n.\r\n" follows the status line (the status line's own CRLF may be the first CRLF).
      const end = this.buf.indexOf('\r\n.\r\n', nl);
      if (end < 0) return;
      const total = end + 5;
      const raw = this.buf.subarray(nl + 2, end + 2); // body lines including their CRLFs
      this.queue.shift();
      this.buf = this.buf.subarray(total);
      head.resolve({ status, ok, bytes: total, body: unstuff(raw) });
    }
  }
}

/** Remove POP3 dot-stuffing from body lines (each line that starts with "." lost one "."). Drops the last CRLF. */
function unstuff(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const lines = text.split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n'), 'latin1');
}
