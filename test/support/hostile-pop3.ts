// A scripted, deliberately misbehaving POP3 peer on 127.0.0.1 (plain, implicit TLS or STLS) for fault tests of the client.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { TestCerts } from './certs.js';
import { sleep } from './wait.js';

export interface TlsMaterial {
  key: string | Buffer;
  cert: string | Buffer;
  maxVersion?: tls.SecureVersion;
  /** One context shared by every connection (same ticket keys), so clients can resume sessions across connections. */
  secureContext?: tls.SecureContext;
}

export function tlsMaterial(c: TestCerts): TlsMaterial {
  return { key: readFileSync(c.keyFile), cert: readFileSync(c.certFile) };
}

/** One accepted client connection, driven by a test script. */
export class PeerConn {
  socket: net.Socket | tls.TLSSocket;
  /** Every line the client sent, in order, without CRLF. */
  readonly received: string[] = [];
  /** Raw bytes received since the last readLine() call was answered (for pipelining checks). */
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private isClosed = false;
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.closed = new Promise((r) => (this.markClosed = r));
    this.attach(socket);
  }

  private attach(s: net.Socket | tls.TLSSocket): void {
    s.on('data', this.onData);
    s.on('error', () => {});
    s.once('close', this.onClose);
  }

  private readonly onData = (d: Buffer) => {
    this.buf = Buffer.concat([this.buf, d]);
    this.wake();
  };

  private readonly onClose = () => {
    this.isClosed = true;
    this.markClosed();
    this.wake();
  };

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Bytes received but not yet consumed by readLine(). */
  get pendingBytes(): number {
    return this.buf.length;
  }

  write(data: string | Buffer): void {
    if (!this.isClosed && !this.socket.destroyed) this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Next line from the client; rejects when the connection closes or after timeoutMs. */
  async readLine(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const line = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 2);
        this.received.push(line);
        return line;
      }
      if (this.isClosed) throw new Error('peer: connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('peer: readLine timed out');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Read one line and check its command verb (and optionally the whole line). */
  async expect(verb: string, full?: RegExp): Promise<string> {
    const line = await this.readLine();
    const got = line.split(' ')[0]!.toUpperCase();
    if (got !== verb.toUpperCase()) throw new Error(`peer: expected ${verb}, got ${JSON.stringify(line)}`);
    if (full && !full.test(line)) throw new Error(`peer: ${JSON.stringify(line)} does not match ${full}`);
    return line;
  }

  /** Wait until the client closes (bounded). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (t = setTimeout(() => r(false), timeoutMs)));
    const res = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(t);
    return res;
  }

  /** Server side of STLS after "+OK": hand the socket to TLS. */
  async startTls(material: TlsMaterial): Promise<void> {
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    plain.removeListener('close', this.onClose);
    const secure = new tls.TLSSocket(plain as net.Socket, { isServer: true, ...material });
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('peer: closed during TLS handshake')));
    });
  }

  /** Send in small pieces with a pause between them (slow-loris). Stops when the connection is gone. */
  async trickle(data: string | Buffer, pieceBytes: number, delayMs: number): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    for (let i = 0; i < b.length && this.isOpen; i += pieceBytes) {
      this.write(b.subarray(i, i + pieceBytes));
      await sleep(delayMs);
    }
  }

  end(data?: string | Buffer): void {
    if (data !== undefined) this.write(data);
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface HostileServer {
  port: number;
  /** Connections accepted so far. */
  readonly conns: PeerConn[];
  /** Errors thrown by scripts (a test usually asserts this is empty). */
  readonly scriptErrors: unknown[];
  /** Resolves when every script has finished. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export interface HostileOptions {
  /** Implicit TLS: the TLS handshake happens on accept. */
  implicitTls?: TlsMaterial;
}

/** Start a peer on 127.0.0.1 that runs `script` for each accepted connection. */
export function startHostilePop3(script: (c: PeerConn) => Promise<void>, o: HostileOptions = {}): Promise<HostileServer> {
  const conns: PeerConn[] = [];
  const scriptErrors: unknown[] = [];
  const running: Promise<void>[] = [];
  const server = net.createServer((raw) => {
    raw.on('error', () => {});
    let sock: net.Socket | tls.TLSSocket = raw;
    if (o.implicitTls) {
      sock = new tls.TLSSocket(raw, { isServer: true, ...o.implicitTls });
      sock.on('error', () => {});
    }
    const c = new PeerConn(sock);
    conns.push(c);
    const start = o.implicitTls
      ? new Promise<boolean>((resolve) => {
          (sock as tls.TLSSocket).once('secure', () => resolve(true));
          sock.once('close', () => resolve(false));
        })
      : Promise.resolve(true);
    running.push(
      start
        .then((ok) => (ok ? script(c) : undefined))
        .catch((e: unknown) => {
          if (c.isOpen) scriptErrors.push(e); // errors after the client hung up are part of the scenario
        }),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        conns,
        scriptErrors,
        settled: async () => {
          await Promise.all(running);
        },
        close: async () => {
          for (const c of conns) c.destroy();
          await new Promise<void>((r) => server.close(() => r()));
          await Promise.all(running);
        },
      });
    });
  });
}

/** A mailbox served by `serveMailbox`. */
export interface MailboxScript {
  greeting?: string;
  /** CAPA lines; null makes CAPA fail (RFC 1939-only server). */
  capa?: string[] | null;
  /** Capabilities after login (default: same as capa without STLS/USER/SASL). */
  capaAfterLogin?: string[] | null;
  user?: string;
  pass?: string;
  messages?: Buffer[];
  uids?: string[];
  /** Delay before each reply; with `strictNoPipelining`, bytes arriving meanwhile are a violation. */
  replyDelayMs?: number;
  strictNoPipelining?: boolean;
  /** Override or add commands; return true when handled. */
  handle?: (c: PeerConn, verb: string, args: string[], state: MailboxState) => Promise<boolean> | boolean;
  tlsForStls?: TlsMaterial;
}

export interface MailboxState {
  loggedIn: boolean;
  deleted: Set<number>;
  violations: string[];
  quit: boolean;
}

function stuff(msg: Buffer): Buffer {
  const text = msg.toString('latin1');
  const lines = text.split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? '.' + l : l)).join('\r\n') + '\r\n', 'latin1');
}

function topOf(msg: Buffer, n: number): Buffer {
  const text = msg.toString('latin1');
  const sep = text.indexOf('\r\n\r\n');
  if (sep < 0) return msg;
  const head = text.slice(0, sep + 4);
  const body = text.slice(sep + 4).split('\r\n');
  if (body[body.length - 1] === '') body.pop();
  const kept = body.slice(0, n);
  return Buffer.from(head + kept.map((l) => l + '\r\n').join(''), 'latin1');
}

/** A small, correct RFC 1939/2449 server loop, with hooks for misbehaviour. Returns the final state. */
export async function serveMailbox(c: PeerConn, s: MailboxScript): Promise<MailboxState> {
  const st: MailboxState = { loggedIn: false, deleted: new Set(), violations: [], quit: false };
  const msgs = s.messages ?? [];
  const uids = s.uids ?? msgs.map((_, i) => `uid-${i + 1}`);
  const exists = (n: number) => Number.isInteger(n) && n >= 1 && n <= msgs.length && !st.deleted.has(n);
  const capa = s.capa === undefined ? ['USER', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING'] : s.capa;
  c.write(`${s.greeting ?? '+OK hostile POP3 ready'}\r\n`);
  while (c.isOpen) {
    let line: string;
    try {
      line = await c.readLine(10_000);
    } catch {
      return st;
    }
    const [verbRaw, ...args] = line.split(' ');
    const verb = verbRaw!.toUpperCase();
    if (s.replyDelayMs) {
      await sleep(s.replyDelayMs);
      if (s.strictNoPipelining && c.pendingBytes > 0) st.violations.push(`client sent more before the reply to ${verb}`);
    }
    if (s.handle && (await s.handle(c, verb, args, st))) continue;
    const n = Number(args[0]);
    switch (verb) {
      case 'CAPA': {
        const lines = st.loggedIn && s.capaAfterLogin !== undefined ? s.capaAfterLogin : capa;
        if (lines === null) c.write('-ERR unknown command\r\n');
        else c.write(`+OK\r\n${lines.map((l) => l + '\r\n').join('')}.\r\n`);
        break;
      }
      case 'USER':
        c.write(args[0] === (s.user ?? 'user') ? '+OK\r\n' : '-ERR [AUTH] no\r\n');
        break;
      case 'PASS':
        if (args.join(' ') === (s.pass ?? 'pass')) {
          st.loggedIn = true;
          c.write('+OK logged in\r\n');
        } else c.write('-ERR [AUTH] bad password\r\n');
        break;
      case 'STAT': {
        const live = msgs.filter((_, i) => !st.deleted.has(i + 1));
        c.write(`+OK ${live.length} ${live.reduce((a, m) => a + m.length, 0)}\r\n`);
        break;
      }
      case 'LIST':
      case 'UIDL': {
        const val = (i: number) => (verb === 'LIST' ? String(msgs[i - 1]!.length) : uids[i - 1]!);
        if (args.length > 0) {
          c.write(exists(n) ? `+OK ${n} ${val(n)}\r\n` : '-ERR no such message\r\n');
        } else {
          let out = '+OK\r\n';
          for (let i = 1; i <= msgs.length; i++) if (exists(i)) out += `${i} ${val(i)}\r\n`;
          c.write(out + '.\r\n');
        }
        break;
      }
      case 'TOP':
        if (!exists(n)) c.write('-ERR no such message\r\n');
        else c.write(Buffer.concat([Buffer.from('+OK\r\n'), stuff(topOf(msgs[n - 1]!, Number(args[1]))), Buffer.from('.\r\n')]));
        break;
      case 'RETR':
        if (!exists(n)) c.write('-ERR no such message\r\n');
        else c.write(Buffer.concat([Buffer.from(`+OK ${msgs[n - 1]!.length} octets\r\n`), stuff(msgs[n - 1]!), Buffer.from('.\r\n')]));
        break;
      case 'DELE':
        if (!exists(n)) c.write('-ERR no such message\r\n');
        else {
          st.deleted.add(n);
          c.write('+OK deleted\r\n');
        }
        break;
      case 'RSET':
        st.deleted.clear();
        c.write('+OK\r\n');
        break;
      case 'NOOP':
        c.write('+OK\r\n');
        break;
      case 'STLS':
        if (!s.tlsForStls) c.write('-ERR no TLS here\r\n');
        else {
          c.write('+OK begin TLS\r\n');
          await c.startTls(s.tlsForStls);
        }
        break;
      case 'QUIT':
        st.quit = true;
        c.end('+OK bye\r\n');
        return st;
      default:
        c.write('-ERR unknown command\r\n');
    }
  }
  return st;
}

/** A test message with CRLF line ends. */
export function message(subject: string, body: string, extraHeaders = ''): Buffer {
  return Buffer.from(`From: cam@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@x>\r\n${extraHeaders}\r\n${body}`, 'latin1');
}
