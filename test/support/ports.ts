// Port helpers for the test harness: pick a free loopback port and wait until a server accepts on one.
import net from 'node:net';

/** A port that was free on 127.0.0.1 a moment ago (listen on :0, read the port, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Several distinct free ports at once. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** Resolve true if a TCP connection to host:port succeeds within timeoutMs, else false. */
export function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Poll until host:port accepts connections. `alive` is checked between attempts so a server that
 * died at start fails fast. Rejects after timeoutMs with `describe()` (e.g. a log tail) in the message.
 */
export async function waitForPort(
  host: string,
  port: number,
  opts: { timeoutMs?: number; alive?: () => boolean; describe?: () => Promise<string> | string } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    if (await canConnect(host, port, 250)) return;
    const alive = opts.alive ? opts.alive() : true;
    if (!alive || Date.now() >= deadline) {
      const extra = opts.describe ? await opts.describe() : '';
      throw new Error(
        `${host}:${port} ${alive ? 'did not accept connections in time' : 'server process exited before accepting'}` +
          (extra ? `\n${extra}` : ''),
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
