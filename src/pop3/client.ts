// The public POP3 client: connects (TCP, implicit TLS or STLS), authenticates, and exposes the RFC 1939/2449 commands under the session-state rules.
import type { Readable } from 'node:stream';
import type * as tls from 'node:tls';
import { registerSecret, silentLogger, type Logger } from '../log.js';
import { Capabilities } from './capabilities.js';
import { Pop3Connection, type ConnectionStats } from './connection.js';
import { Pop3Error, errorFromReply } from './errors.js';
import { DEFAULT_LIMITS, DEFAULT_PIPELINE_WINDOW, DEFAULT_TIMEOUTS, positiveOption as positive } from './limits.js';
import { SessionDeadline, type TimeoutOptions } from './deadline.js';
import { Pop3Memory, serverKeyOf, type ChainMemory } from './memory.js';
import { openTransport } from './transport.js';
import { describeTls, type TlsInfo, type TlsParams } from './tls-policy.js';
import { stls } from './commands/stls.js';
import type { SessionContext, SessionState } from './session-context.js';
import { candidateMechanisms, type AuthMechanism, type ConcreteMechanism } from './auth/policy.js';
import { authenticate } from './auth/login.js';
import * as maildrop from './commands/maildrop.js';
import * as fetch from './commands/fetch.js';
import * as session from './commands/session.js';

export interface Pop3Options {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  /** Extra CA certificate(s), PEM; added to Node's bundled roots. */
  ca?: string | Buffer;
  /** Name the certificate must carry (and SNI when not an IP); default host. */
  servername?: string;
  /** SHA-256 certificate pin, hex, colons optional, any case; checked in addition to chain verification. */
  fingerprint?: string;
  minTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** minReplyBytesPerSec over any replyRateWindowMs of reply transfer, else ESLOW (0 turns the rule off; see connection.ts). */
  timeouts?: TimeoutOptions & { minReplyBytesPerSec?: number; replyRateWindowMs?: number };
  limits?: { maxLineBytes?: number; maxReplyBytes?: number };
  /** Pipeline commands when the server advertises PIPELINING; default true. */
  pipelining?: boolean;
  /** Most commands in flight at once; default 32. */
  pipelineWindow?: number;
  /** A TLS session from a previous connection's `tlsSession`, to resume (its certificate and CAPA are known to `memory`). */
  tlsSession?: Buffer;
  /**
   * When the TLS session is resumed, use the CAPA `memory` kept from an earlier session with the same server (the ticket proves
   * it is the same) instead of asking again: a round trip and about 200 bytes less per poll. With STLS, the
   * plaintext CAPA before STLS is skipped too. Default true. If a login then fails in a way a changed server could
   * explain, CAPA is read afresh and the login tried once more only if that changes the mechanism.
   */
  rememberCapabilities?: boolean;
  logger?: Logger;
  /** Aborts the whole session (destroy without QUIT). */
  signal?: AbortSignal;
  /**
   * What clients remember between sessions (see memory.ts): TLS sessions with their certificate and CAPA, lean-hello
   * refusals, secure contexts, and the caller's server notebook. Pass the same one to every connect of a process
   * (the agent makes one); without it, the client uses a fresh one: nothing is remembered from earlier sessions.
   */
  memory?: Pop3Memory;
}

/** Mechanisms one login tries at most, so a wrong password on a server without response codes costs few refusals. */
export const MAX_MECHANISM_ATTEMPTS = 3;

export interface LoginOptions {
  username: string;
  password?: string;
  accessToken?: string;
  mechanism?: AuthMechanism;
  allowInsecureAuth?: boolean;
  /**
   * Ask CAPA again after login (RFC 2449: capabilities may change, e.g. per-user LOGIN-DELAY). Default true. A poller
   * that already knows what it needs from the pre-login CAPA (TOP, UIDL, PIPELINING) saves about 80 bytes a poll.
   */
  capaAfterLogin?: boolean;
}

export interface Pop3Stats extends ConnectionStats {}

/** RFC 1939 greeting timestamp for APOP: "<...>" (msg-id syntax, no spaces). */
export function parseApopTimestamp(greetingText: string): string | null {
  const m = /<[^<>\s]+>/.exec(greetingText);
  return m ? m[0] : null;
}

export class Pop3Client {
  readonly greeting: string;
  readonly apopTimestamp: string | null;

  private caps: Capabilities | null;
  private capsBeforeTls: Capabilities | null = null;
  /** `caps` came from an earlier session (see Pop3Options.rememberCapabilities), not from this one. */
  private capsRemembered = false;
  private chain: ChainMemory | null = null;
  private phase: Exclude<SessionState, 'CLOSED'> = 'AUTHORIZATION';
  private tls: TlsInfo | null;
  private session: Buffer | null;
  private readonly ctx: SessionContext;

  private constructor(
    private readonly conn: Pop3Connection,
    private readonly opts: Pop3Options,
    private readonly memory: Pop3Memory,
    private readonly logger: Logger,
    init: { greeting: string; caps: Capabilities | null; tls: TlsInfo | null; session: Buffer | null },
  ) {
    this.greeting = init.greeting;
    this.apopTimestamp = parseApopTimestamp(init.greeting);
    this.caps = init.caps;
    this.tls = init.tls;
    this.session = init.session;
    const self = this;
    const maxReplyBytes = opts.limits?.maxReplyBytes ?? DEFAULT_LIMITS.maxReplyBytes;
    this.ctx = {
      conn,
      logger,
      get capabilities() {
        return self.caps;
      },
      maxReplyBytes,
      requireState: (command, allowed) => self.requireState(command, allowed),
      topSupport: 'unknown',
      topFallbackLogged: false,
      uidlRefused: false,
    };
    this.applyCapabilities();
  }

  /**
   * Open a session: TCP (+ TLS), greeting, CAPA; for 'starttls' also STLS (see commands/stls.ts) and CAPA again.
   * Never continues in cleartext when TLS was asked for.
   */
  static async connect(opts: Pop3Options): Promise<Pop3Client> {
    const logger = opts.logger ?? silentLogger;
    const deadline = new SessionDeadline(opts.timeouts);
    const t = opts.timeouts ?? {};
    const minReplyRate = {
      bytesPerSec: t.minReplyBytesPerSec ?? DEFAULT_TIMEOUTS.minReplyBytesPerSec,
      windowMs: t.replyRateWindowMs ?? DEFAULT_TIMEOUTS.replyRateWindowMs,
    };
    const maxLineBytes = positive(opts.limits?.maxLineBytes, DEFAULT_LIMITS.maxLineBytes, 'limits.maxLineBytes');
    const maxReplyBytes = positive(opts.limits?.maxReplyBytes, DEFAULT_LIMITS.maxReplyBytes, 'limits.maxReplyBytes');
    const pipelineWindow = Math.floor(positive(opts.pipelineWindow, DEFAULT_PIPELINE_WINDOW, 'pipelineWindow'));
    if (opts.tls !== 'implicit' && opts.tls !== 'starttls' && opts.tls !== 'none') {
      throw new Pop3Error('EINVALID', `tls must be 'implicit', 'starttls' or 'none'`);
    }
    const memory = opts.memory ?? new Pop3Memory();
    const tlsParams: TlsParams = {
      host: opts.host,
      port: opts.port,
      servername: opts.servername,
      ca: opts.ca,
      fingerprint: opts.fingerprint,
      minTlsVersion: opts.minTlsVersion,
      session: opts.tlsSession,
    };
    let latestSession: Buffer | null = opts.tlsSession ?? null;
    let client: Pop3Client | null = null;
    const onSession = (s: Buffer) => {
      latestSession = s;
      if (client) client.session = s;
    };
    const tlsPhase = { tls: tlsParams, memory, deadline, signal: opts.signal, onSession };
    logger.debug('connecting', { host: opts.host, port: opts.port, tls: opts.tls });
    const socket = await openTransport({ ...tlsPhase, host: opts.host, port: opts.port, implicitTls: opts.tls === 'implicit' });
    const conn = new Pop3Connection(socket, { maxLineBytes, maxReplyBytes, deadline, pipelineWindow, minReplyRate, logger, signal: opts.signal });
    try {
      const g = await conn.readGreeting();
      if (g.status !== '+OK') {
        const err = errorFromReply('greeting', g.text);
        conn.fail(err);
        throw err;
      }
      const tlsInfo = opts.tls === 'implicit' ? describeTls(socket as tls.TLSSocket, tlsParams, memory) : null;
      const probe = new Pop3Client(conn, opts, memory, logger, { greeting: g.text, caps: null, tls: tlsInfo, session: latestSession });
      client = probe;
      const reuse = opts.rememberCapabilities !== false;
      if (opts.tls === 'implicit') await probe.readTlsCapabilities(socket as tls.TLSSocket, reuse);
      else if (opts.tls === 'none') probe.caps = await session.capa(probe.ctx);
      else {
        const skipCapa = reuse && memory.recall(opts.tlsSession)?.chain.capabilities != null;
        const up = await stls(probe.ctx, { ...tlsPhase, skipCapa });
        probe.capsBeforeTls = up.before;
        probe.tls = describeTls(up.socket, tlsParams, memory);
        // RFC 2595: forget everything learned before the handshake.
        probe.caps = null;
        await probe.readTlsCapabilities(up.socket, reuse);
      }
      probe.applyCapabilities();
      logger.debug('connected', { tls: probe.tls?.protocol ?? 'none', resumed: probe.tls?.resumed ?? false });
      return probe;
    } catch (e) {
      const err = conn.fatalError ?? (e instanceof Pop3Error ? e : new Pop3Error('EPROTOCOL', String(e), { cause: e }));
      conn.destroy(err);
      // A command rejected with ECLOSED because of an earlier fatal error: report the cause itself.
      throw e instanceof Pop3Error && e.code === 'ECLOSED' && conn.fatalError ? conn.fatalError : e;
    }
  }

  /** CAPA over TLS: remembered from an earlier session with this server when the session was resumed, else asked (and remembered). */
  private async readTlsCapabilities(sock: tls.TLSSocket, reuse: boolean): Promise<void> {
    this.chain = this.memory.chainOf(sock, this.opts.tlsSession);
    const known = this.chain.capabilities;
    if (reuse && this.tls?.resumed && known) {
      this.caps = new Capabilities(known);
      this.capsRemembered = true;
      this.logger.debug('capabilities remembered from an earlier session with this server; CAPA skipped');
      return;
    }
    await this.readCapabilities();
  }

  /** CAPA from the server itself, remembered for later sessions resumed from this one. */
  private async readCapabilities(): Promise<void> {
    this.caps = await session.capa(this.ctx);
    this.capsRemembered = false;
    if (this.chain) this.chain.capabilities = this.caps ? [...this.caps.lines] : null;
  }

  private applyCapabilities(): void {
    this.conn.pipelining = this.opts.pipelining !== false && (this.caps?.has('PIPELINING') ?? false);
    // Without CAPA, TOP support stays as learned by trying it (see commands/fetch.ts).
    if (this.caps) this.ctx.topSupport = this.caps.has('TOP') ? 'yes' : 'no';
  }

  private requireState(command: string, allowed: readonly SessionState[]): void {
    const fatal = this.conn.fatalError;
    if (fatal) throw new Pop3Error('ECLOSED', `${command}: connection is closed (${fatal.code}: ${fatal.message})`, { cause: fatal });
    const st = this.state;
    if (!allowed.includes(st)) throw new Pop3Error('ESTATE', `${command} is not allowed in the ${st} state`);
  }

  get capabilities(): Capabilities | null {
    return this.caps;
  }

  /** For 'starttls': what CAPA said in cleartext, before the upgrade (diagnostics only; not trusted). */
  get capabilitiesBeforeTls(): Capabilities | null {
    return this.capsBeforeTls;
  }

  get tlsInfo(): TlsInfo | null {
    return this.tls;
  }

  get tlsSession(): Buffer | null {
    return this.session;
  }

  /** The error that ended the session (null while open or after a clean QUIT). */
  get fatalError(): Pop3Error | null {
    return this.conn.fatalError;
  }

  get state(): SessionState {
    if (this.conn.closed) return 'CLOSED';
    return this.phase;
  }

  get stats(): Pop3Stats {
    return { ...this.conn.stats };
  }

  /** The underlying socket is TLS (implicit, or upgraded by STLS). */
  get secure(): boolean {
    return this.tls !== null;
  }

  async capa(): Promise<Capabilities | null> {
    this.caps = await session.capa(this.ctx);
    this.applyCapabilities();
    return this.caps;
  }

  async login(o: LoginOptions): Promise<{ mechanism: ConcreteMechanism; capabilities: Capabilities | null }> {
    return this.loginWith(o);
  }

  /**
   * Log in, then STAT, and `UIDL probe` when given. Nothing is ever sent behind the login before its reply: RFC 5034
   * lets a security layer start right after the authentication exchange, and servers reset their input there
   * (Cyrus pop3d and Courier drop whatever was pipelined behind AUTH). Once logged in, STAT and the probe go out
   * together when the server pipelines (one round trip for both); otherwise the probe is left to the caller, who
   * may not need it after the STAT. `probeUid` is there only when the probe was sent (null: no such message).
   */
  async loginAndStat(
    o: LoginOptions,
    probe?: number,
  ): Promise<{ mechanism: ConcreteMechanism; capabilities: Capabilities | null; stat: { count: number; size: number }; probeUid?: string | null }> {
    if (probe !== undefined && !(Number.isInteger(probe) && probe > 0)) throw new Pop3Error('EINVALID', 'probe must be a message number');
    const login = await this.loginWith(o);
    if (probe === undefined || !this.conn.pipelining) return { ...login, stat: await this.stat() };
    const [s, u] = this.conn.sendMany([
      { name: 'STAT', line: 'STAT', multiline: false },
      { name: 'UIDL', line: `UIDL ${probe}`, multiline: false },
    ]);
    const [sr, ur] = await Promise.all([s!, u!]);
    if (sr.status !== '+OK') throw errorFromReply('STAT', sr.text);
    return { ...login, stat: maildrop.parseStat(sr.text), probeUid: ur.status === '+OK' ? maildrop.parseUidlOne(ur.text) : null };
  }

  /** This server as the notebook knows it: host, port and certificate (a new certificate is a new server). */
  get serverKey(): string {
    return serverKeyOf(this.opts.host, this.opts.port, this.tls?.peerCertificate.fingerprint256 ?? '');
  }

  /**
   * Log in, trying the candidate mechanisms in turn. A refusal without a response code (a plain "-ERR": "unknown
   * command" to APOP, a SASL mechanism the server lists but does not really support) is not a failed login: the
   * next candidate is tried, up to MAX_MECHANISM_ATTEMPTS, and only when none worked does the login fail (one
   * failure for the caller's login cap). A refusal with a code ([AUTH], [SYS/TEMP], ...) is about the account or
   * the server, never the mechanism: it ends the login at once. Remembered capabilities may be stale (a withdrawn
   * mechanism looks like a plain "-ERR"), so the first such refusal reads CAPA afresh. Mechanisms refused that way
   * while another worked are noted in the server notebook (when given), so later sessions try the working one first.
   */
  private async loginWith(o: LoginOptions): Promise<{ mechanism: ConcreteMechanism; capabilities: Capabilities | null }> {
    this.requireState('login', ['AUTHORIZATION']);
    if (typeof o.username !== 'string' || o.username.length === 0) throw new Pop3Error('EINVALID', 'username is required');
    registerSecret(o.password);
    registerSecret(o.accessToken);
    const notes = this.memory.notes;
    const key = notes ? this.serverKey : '';
    const avoid = notes?.recall(key)?.refusedMechanisms ?? [];
    const candidates = () =>
      candidateMechanisms({
        requested: o.mechanism ?? 'auto',
        secure: this.secure,
        capabilities: this.caps,
        apopTimestamp: this.apopTimestamp,
        allowInsecureAuth: o.allowInsecureAuth === true,
        hasPassword: typeof o.password === 'string',
        hasToken: typeof o.accessToken === 'string' && o.accessToken.length > 0,
        avoid,
      });
    const refused: ConcreteMechanism[] = [];
    let mech = candidates()[0]!;
    for (;;) {
      this.logger.debug('authenticating', { mechanism: mech });
      try {
        await authenticate(this.conn, mech, o, { host: this.opts.host, port: this.opts.port, apopTimestamp: this.apopTimestamp });
        break;
      } catch (err) {
        // [LOGIN-DELAY]: the CAPA says how long (RFC 2449 "LOGIN-DELAY n", seconds); the caller's backoff uses it.
        if (err instanceof Pop3Error && err.code === 'ELOGIN_DELAY') {
          const n = Number(this.caps?.get('LOGIN-DELAY')?.[0]);
          if (Number.isInteger(n) && n > 0) err.retryAfterSec = n;
        }
        if (!(err instanceof Pop3Error) || !['EAUTH', 'ERR'].includes(err.code) || err.respCode || this.conn.fatalError) throw err;
        refused.push(mech);
        if (this.capsRemembered) {
          await this.readCapabilities();
          this.applyCapabilities();
        }
        let next: ConcreteMechanism | undefined;
        try {
          next = candidates().find((m) => !refused.includes(m));
        } catch {
          // A fresh CAPA that leaves nothing usable: the refusal itself is the better report.
        }
        if (next === undefined || refused.length >= MAX_MECHANISM_ATTEMPTS) throw err;
        this.logger.info('the server refused a mechanism without a response code; trying the next one', { refused: mech, next });
        mech = next;
      }
    }
    if (notes && (refused.length > 0 || avoid.includes(mech))) {
      const still = [...new Set([...avoid, ...refused])].filter((m) => m !== mech);
      notes.note(key, { refusedMechanisms: still });
    }
    this.phase = 'TRANSACTION';
    // Skipping is only safe when the pre-login CAPA already offers what a poll relies on.
    if (this.caps !== null && (o.capaAfterLogin !== false || !this.caps.has('TOP') || !this.caps.has('UIDL'))) {
      this.caps = await session.capa(this.ctx);
      this.applyCapabilities();
    }
    return { mechanism: mech, capabilities: this.caps };
  }

  stat(): Promise<{ count: number; size: number }> {
    return this.run(() => maildrop.stat(this.ctx));
  }

  list(): Promise<Map<number, number>>;
  list(msg: number): Promise<number | null>;
  list(msg?: number): Promise<Map<number, number> | number | null> {
    return msg === undefined ? this.run(() => maildrop.listAll(this.ctx)) : this.run(() => maildrop.listOne(this.ctx, msg));
  }

  uidl(): Promise<Map<number, string>>;
  uidl(msg: number): Promise<string | null>;
  uidl(msg?: number): Promise<Map<number, string> | string | null> {
    return msg === undefined ? this.run(() => maildrop.uidlAll(this.ctx)) : this.run(() => maildrop.uidlOne(this.ctx, msg));
  }

  uidlMany(msgs: number[]): Promise<Map<number, string | null>> {
    return this.run(() => maildrop.uidlMany(this.ctx, msgs));
  }

  top(msg: number, lines: number, o?: fetch.TopOptions): Promise<Buffer> {
    return this.run(() => fetch.top(this.ctx, msg, lines, o));
  }

  /** TOP of many messages, each handed to `each` as it completes and then dropped (see commands/fetch.ts). */
  topEach(msgs: number[], lines: number, each: fetch.TopEachCallback, o?: fetch.TopOptions): Promise<void> {
    return this.run(() => fetch.topEach(this.ctx, msgs, lines, each, o));
  }

  /** CAPA lists UIDL but the server refused it in this session: the caller uses synthetic ids. */
  get uidlRefused(): boolean {
    return this.ctx.uidlRefused;
  }

  topMany(
    msgs: number[],
    lines: number,
    onEach?: (msg: number, data: Buffer) => void | Promise<void>,
  ): Promise<Map<number, Buffer | Pop3Error>> {
    return this.run(() => fetch.topMany(this.ctx, msgs, lines, onEach));
  }

  retr(msg: number, o?: { maxBytes?: number }): Promise<Buffer> {
    return this.run(() => fetch.retr(this.ctx, msg, o));
  }

  retrStream(msg: number, o?: { maxBytes?: number }): Promise<Readable> {
    return this.run(() => fetch.retrStream(this.ctx, msg, o));
  }

  dele(msg: number): Promise<void> {
    return this.run(() => session.dele(this.ctx, msg));
  }

  deleMany(msgs: number[]): Promise<Map<number, Pop3Error | null>> {
    return this.run(() => session.deleMany(this.ctx, msgs));
  }

  rset(): Promise<void> {
    return this.run(() => session.rset(this.ctx));
  }

  noop(): Promise<void> {
    return this.run(() => session.noop(this.ctx));
  }

  /** QUIT: in TRANSACTION the session enters UPDATE and the server commits deletions; resolves once closed. */
  async quit(): Promise<void> {
    await session.quit(this.ctx, () => {
      if (this.phase === 'TRANSACTION') this.phase = 'UPDATE';
    });
  }

  /** Abort without QUIT: nothing marked deleted is removed. Safe to call any time, more than once. */
  destroy(): void {
    this.conn.destroy();
  }

  /** Run a command body, turning synchronous validation throws into rejections. */
  private run<T>(f: () => Promise<T>): Promise<T> {
    try {
      return f();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

