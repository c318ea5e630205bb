// Reference figures measured outside the timed runs with a raw POP3 session: the TOP n 0 lower bound, the RETR bytes of chosen messages, and what STAT/UIDL/LIST replies cost.
import { RawPop3 } from './raw-pop3.js';

export interface ServerLogin {
  host: string;
  /** Plain POP3 port (the test server accepts USER/PASS on loopback). */
  port: number;
  user: string;
  pass: string;
}

export interface TopZeroReference {
  messages: number;
  octets: number;
  /** Sum of the TOP n 0 reply sizes over the given messages: the least any header-only poller must receive. */
  top0Bytes: number;
  /** Per message number: reply size of TOP n 0, and length of the header block it carried. */
  top0ByMsg: Map<number, { replyBytes: number; headerBytes: number }>;
  /** Reply sizes of STAT, full UIDL, full LIST and QUIT in the same session (the cost of the non-TOP commands). */
  statBytes: number;
  uidlBytes: number;
  listBytes: number;
  quitBytes: number;
  /** Sizes from LIST. */
  sizes: Map<number, number>;
}

/** TOP n 0 for the given messages (default all), plus STAT, UIDL, LIST and QUIT, in one session. */
export async function measureTopZero(login: ServerLogin, msgs?: number[]): Promise<TopZeroReference> {
  const s = await RawPop3.login({ host: login.host, port: login.port, user: login.user, pass: login.pass, timeoutMs: 300_000 });
  try {
    const stat = await s.command('STAT');
    const m = /^\+OK (\d+) (\d+)/.exec(stat.status);
    if (!m) throw new Error(`STAT: ${stat.status}`);
    const count = Number(m[1]);
    const uidl = await s.command('UIDL', true);
    const list = await s.command('LIST', true);
    const sizes = new Map<number, number>();
    for (const line of list.body.toString('latin1').split('\r\n')) {
      const lm = /^(\d+) (\d+)$/.exec(line);
      if (lm) sizes.set(Number(lm[1]), Number(lm[2]));
    }
    const which = msgs ?? Array.from({ length: count }, (_, i) => i + 1);
    const replies = await s.many(which.map((n) => `TOP ${n} 0`), true);
    const top0ByMsg = new Map<number, { replyBytes: number; headerBytes: number }>();
    let top0Bytes = 0;
    replies.forEach((r, i) => {
      if (!r.ok) throw new Error(`TOP ${which[i]} 0: ${r.status}`);
      top0Bytes += r.bytes;
      // body is the header block without its final CRLF (the blank line's own CRLF).
      top0ByMsg.set(which[i]!, { replyBytes: r.bytes, headerBytes: r.body.length + 2 });
    });
    const quit = await s.quit();
    return {
      messages: count, octets: Number(m[2]), top0Bytes, top0ByMsg,
      statBytes: stat.bytes, uidlBytes: uidl.bytes, listBytes: list.bytes, quitBytes: quit.bytes, sizes,
    };
  } finally {
    s.destroy();
  }
}

/** RETR of the given messages in one session: total and per-message reply sizes. */
export async function measureRetr(login: ServerLogin, msgs: number[]): Promise<{ bytes: number; byMsg: Map<number, number> }> {
  const s = await RawPop3.login({ host: login.host, port: login.port, user: login.user, pass: login.pass, timeoutMs: 300_000 });
  try {
    const replies = await s.many(msgs.map((n) => `RETR ${n}`), true, 8);
    const byMsg = new Map<number, number>();
    let bytes = 0;
    replies.forEach((r, i) => {
      if (!r.ok) throw new Error(`RETR ${msgs[i]}: ${r.status}`);
      byMsg.set(msgs[i]!, r.bytes);
      bytes += r.bytes;
    });
    await s.quit();
    return { bytes, byMsg };
  } finally {
    s.destroy();
  }
}

export interface WireCount {
  fromServer: number;
  toServer: number;
}

/**
 * The least a TLS poll can cost on the wire: connect through the counting relay, read the greeting, QUIT — once with a
 * full handshake, then resuming that session. Nothing else is sent, so this is the floor under any poll's wire bytes.
 */
export async function measureTlsFloor(
  relay: { port: number; connectionStats: Array<{ fromServer: number; toServer: number }> },
  ca: Buffer,
  maxVersion: 'TLSv1.2' | 'TLSv1.3' | 'pop2mqtt',
): Promise<{ full: WireCount; resumed: WireCount; reused: boolean }> {
  const tls = await import('node:tls');
  const { tlsConnectOptions } = await import('../../src/pop3/client-hello.js');
  const { Pop3Memory } = await import('../../src/pop3/memory.js');
  const memory = new Pop3Memory();
  // 'pop2mqtt': the agent's own hellos (full, then the lean TLS 1.3 resumption hello); otherwise Node's defaults.
  const options = (session?: Buffer) =>
    maxVersion === 'pop2mqtt'
      ? { ...tlsConnectOptions({ host: '127.0.0.1', servername: 'localhost', ca, session }, memory, session ? 'lean' : 'full'), host: '127.0.0.1', port: relay.port }
      : { host: '127.0.0.1', port: relay.port, ca, servername: 'localhost', session, maxVersion };
  const one = (session?: Buffer) =>
    new Promise<{ session?: Buffer; reused: boolean; conn: number }>((resolve, reject) => {
      const conn = relay.connectionStats.length;
      let latest: Buffer | undefined;
      let text = '';
      let quitSent = false;
      const s = tls.connect(options(session));
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error('TLS floor measurement timed out'));
      }, 10_000);
      s.on('session', (b: Buffer) => (latest = b));
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (!quitSent && text.includes('\r\n')) {
          quitSent = true;
          s.write('QUIT\r\n');
        }
      });
      let reused = false;
      s.on('secureConnect', () => (reused = s.isSessionReused()));
      s.on('error', reject);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ session: latest, reused, conn });
      });
    });
  const a = await one();
  if (!a.session) throw new Error('server sent no TLS session ticket');
  const b = await one(a.session);
  await new Promise((r) => setTimeout(r, 50)); // let the relay see both sides close
  const pick = (i: number) => ({ fromServer: relay.connectionStats[i]!.fromServer, toServer: relay.connectionStats[i]!.toServer });
  return { full: pick(a.conn), resumed: pick(b.conn), reused: b.reused };
}
