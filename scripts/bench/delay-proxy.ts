// A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each direction: a link with a known round-trip time, to count round trips by their cost.
import net from 'node:net';

export interface DelayProxy {
  port: number;
  /** One-way delay in ms (the round trip adds twice this). */
  delayMs: number;
  close(): Promise<void>;
}

/** Forward 127.0.0.1:<port> to host:targetPort, holding each chunk delayMs before passing it on (order kept). */
export async function startDelayProxy(host: string, targetPort: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port: targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const pipe = (from: net.Socket, to: net.Socket) => {
      let pendingEnd = false;
      let inFlight = 0;
      from.on('data', (chunk: Buffer) => {
        inFlight++;
        setTimeout(() => {
          inFlight--;
          if (!to.destroyed) to.write(chunk);
          if (pendingEnd && inFlight === 0) to.end();
        }, delayMs);
      });
      from.on('end', () => {
        if (inFlight === 0) to.end();
        else pendingEnd = true;
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        setTimeout(() => to.destroy(), delayMs + 50).unref();
      });
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    delayMs,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
