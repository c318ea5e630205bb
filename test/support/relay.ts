// Counting TCP relay for tests: sits between client and a real server to measure wire bytes and to inject faults (cut after n server bytes, stall, drop, freeze after a client command).
import net from 'node:net';

export interface RelayConnectionStats {
  /** Bytes relayed server -> client on this connection. */
  fromServer: number;
  /** Bytes relayed client -> server on this connection. */
  toServer: number;
  /** True once the relay cut this connection because of cutAfterServerBytes. */
  cut: boolean;
  closed: boolean;
  /** The first bytes the client sent (up to 16 KiB): a TLS ClientHello, for instance. */
  clientHead: Buffer;
  /** Date.now() when the relay accepted the connection. */
  openedAt: number;
}

export interface RelayOptions {
  /** Port to listen on (default a free one on 127.0.0.1). */
  port?: number;
  /** Keep every line the clients send (plain-text protocols) in `clientLines`. */
  recordClientLines?: boolean;
}

export interface CutOptions {
  /** Apply to the current connection (or, if none is open, the next one) only, then clear. Default: every connection until clearCut(). */
  once?: boolean;
  /** Close with a TCP RST instead of a FIN. */
  reset?: boolean;
}

export interface Relay {
  host: '127.0.0.1';
  port: number;
  /** Total bytes relayed server -> client over all connections. */
  readonly bytesFromServer: number;
  /** Total bytes relayed client -> server over all connections. */
  readonly bytesToServer: number;
  /** Number of client connections accepted so far. */
  readonly connections: number;
  /** Per-connection counters, in accept order. */
  readonly connectionStats: RelayConnectionStats[];
  /** Lines the clients sent and the relay forwarded, without their line ends, in order (with recordClientLines). */
  readonly clientLines: string[];
  /**
   * Most connections open at the same time so far. A connection counts from accept until either side ends it; a
   * client that sends QUIT half-closes before it hears the server close, so its next connection cannot overlap.
   */
  readonly maxOpen: number;
  /** Once a connection has relayed n bytes from the server, forward exactly n and close both sides. */
  cutAfterServerBytes(n: number, opts?: CutOptions): void;
  clearCut(): void;
  /** Stop forwarding in both directions (data is held, connections stay open; new ones are accepted but stall). */
  pause(): void;
  /** Forward held and new data again. */
  resume(): void;
  /**
   * When a client line matches `re` (needs recordClientLines), forward it to the server, then pause() right after it,
   * so the session hangs as if the network stalled once that command reached the server. Resolves with the line.
   */
  pauseAfterClientLine(re: RegExp): Promise<string>;
  /** Close every open connection (FIN, or RST with reset) without stopping the relay. */
  dropConnections(opts?: { reset?: boolean }): void;
  /** Zero all counters. */
  resetCounters(): void;
  /** Stop listening and close all connections. */
  close(): Promise<void>;
}

interface Conn {
  client: net.Socket;
  upstream: net.Socket;
  stats: RelayConnectionStats;
  /** Client bytes after the last line end (latin1), while recording lines. */
  partialLine: string;
  cutAt?: number;
  reset: boolean;
}

/** Listen on 127.0.0.1 and relay every connection to targetHost:targetPort, counting bytes. */
export async function startRelay(targetHost: string, targetPort: number, opts: RelayOptions = {}): Promise<Relay> {
  let bytesFromServer = 0;
  let bytesToServer = 0;
  let connections = 0;
  let connectionStats: RelayConnectionStats[] = [];
  let maxOpen = 0;
  let paused = false;
  const clientLines: string[] = [];
  let lineTrigger: { re: RegExp; resolve: (line: string) => void } | undefined;
  let cut: { n: number; once: boolean; reset: boolean } | undefined;
  const open = new Set<Conn>();

  const closeConn = (c: Conn, reset: boolean) => {
    c.stats.closed = true;
    open.delete(c);
    if (reset) {
      c.client.resetAndDestroy();
      c.upstream.resetAndDestroy();
    } else {
      c.client.end();
      c.upstream.destroy();
    }
  };

  const pauseAll = () => {
    paused = true;
    for (const c of open) {
      c.client.pause();
      c.upstream.pause();
    }
  };

  /** Record the complete lines of a client chunk; the bytes to forward now (all of them unless a trigger fired). */
  const takeLines = (c: Conn, chunk: Buffer): Buffer => {
    const before = c.partialLine.length;
    c.partialLine += chunk.toString('latin1');
    let start = 0;
    let idx: number;
    while ((idx = c.partialLine.indexOf('\n', start)) >= 0) {
      const line = c.partialLine.slice(start, idx).replace(/\r$/, '');
      start = idx + 1;
      clientLines.push(line);
      if (lineTrigger?.re.test(line)) {
        const t = lineTrigger;
        lineTrigger = undefined;
        const end = start - before;
        c.partialLine = '';
        pauseAll();
        if (end < chunk.length) c.client.unshift(chunk.subarray(end));
        queueMicrotask(() => t.resolve(line));
        return chunk.subarray(0, end);
      }
    }
    c.partialLine = c.partialLine.slice(start).slice(-16_384);
    return chunk;
  };

  const server = net.createServer((client) => {
    connections++;
    const stats: RelayConnectionStats = { fromServer: 0, toServer: 0, cut: false, closed: false, clientHead: Buffer.alloc(0), openedAt: Date.now() };
    connectionStats.push(stats);
    const upstream = net.connect({ host: targetHost, port: targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const c: Conn = { client, upstream, stats, partialLine: '', reset: false };
    if (cut) {
      c.cutAt = cut.n;
      c.reset = cut.reset;
      if (cut.once) cut = undefined;
    }
    open.add(c);
    maxOpen = Math.max(maxOpen, open.size);
    if (paused) {
      client.pause();
      upstream.pause();
    }

    upstream.on('data', (chunk: Buffer) => {
      if (c.stats.closed) return;
      let data = chunk;
      let cutNow = false;
      if (c.cutAt !== undefined && stats.fromServer + data.length >= c.cutAt) {
        data = data.subarray(0, Math.max(0, c.cutAt - stats.fromServer));
        cutNow = true;
      }
      stats.fromServer += data.length;
      bytesFromServer += data.length;
      const ok = data.length ? client.write(data) : true;
      if (cutNow) {
        stats.cut = true;
        closeConn(c, c.reset);
        return;
      }
      if (!ok) {
        upstream.pause();
        client.once('drain', () => {
          if (!paused) upstream.resume();
        });
      }
    });
    client.on('data', (data: Buffer) => {
      if (c.stats.closed) return;
      const chunk = opts.recordClientLines ? takeLines(c, data) : data;
      if (stats.clientHead.length < 16_384) stats.clientHead = Buffer.concat([stats.clientHead, chunk]).subarray(0, 16_384);
      stats.toServer += chunk.length;
      bytesToServer += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => {
          if (!paused) client.resume();
        });
      }
    });
    const finish = () => {
      if (!c.stats.closed) closeConn(c, false);
    };
    upstream.on('end', finish);
    upstream.on('error', () => {
      if (!c.stats.closed) closeConn(c, true);
    });
    client.on('end', () => {
      if (!c.stats.closed) {
        c.stats.closed = true;
        open.delete(c);
        upstream.end();
        client.end();
      }
    });
    client.on('error', () => {
      if (!c.stats.closed) closeConn(c, false);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      if (!c.stats.closed) closeConn(c, false);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    host: '127.0.0.1',
    port,
    get bytesFromServer() {
      return bytesFromServer;
    },
    get bytesToServer() {
      return bytesToServer;
    },
    get connections() {
      return connections;
    },
    get connectionStats() {
      return connectionStats;
    },
    get maxOpen() {
      return maxOpen;
    },
    get clientLines() {
      return clientLines;
    },
    cutAfterServerBytes(n, o = {}) {
      const live = [...open];
      if (o.once && live.length) {
        const c = live[live.length - 1]!;
        c.cutAt = n;
        c.reset = o.reset ?? false;
        cut = undefined;
        return;
      }
      for (const c of live) {
        c.cutAt = n;
        c.reset = o.reset ?? false;
      }
      cut = { n, once: o.once ?? false, reset: o.reset ?? false };
    },
    clearCut() {
      cut = undefined;
      for (const c of open) c.cutAt = undefined;
    },
    pause: pauseAll,
    resume() {
      paused = false;
      for (const c of open) {
        c.client.resume();
        c.upstream.resume();
      }
    },
    pauseAfterClientLine(re) {
      if (!opts.recordClientLines) throw new Error('pauseAfterClientLine needs startRelay(..., { recordClientLines: true })');
      return new Promise<string>((resolve) => (lineTrigger = { re, resolve }));
    },
    dropConnections(o = {}) {
      for (const c of [...open]) closeConn(c, o.reset ?? false);
    },
    resetCounters() {
      bytesFromServer = 0;
      bytesToServer = 0;
      connections = 0;
      connectionStats = [];
      maxOpen = open.size;
    },
    close() {
      for (const c of [...open]) closeConn(c, true);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
