// Test-side MQTT subscriber: records every message on given topics from a real broker so tests can assert what arrived, with bounded waits.
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  qos: 0 | 1 | 2;
  /** payload as UTF-8 text */
  text: string;
  /** payload parsed as JSON, or undefined when it is not JSON */
  json: unknown;
  receivedAt: number;
  /** MQTT 5 user properties, when the message carried any */
  userProperties?: Record<string, string | string[]>;
}

export interface SubscribeOptions {
  /** Trust anchor for mqtts:// (path or PEM); e.g. MosquittoServer.caFile. */
  caFile?: string;
  ca?: string | Buffer;
  username?: string;
  password?: string;
  /** Subscription QoS (default 1). */
  qos?: 0 | 1 | 2;
  /** MQTT protocol version (default 5). */
  protocolVersion?: 4 | 5;
  clientId?: string;
  /** Bound on connect + subscribe (default 5 s). */
  timeoutMs?: number;
}

export interface Subscriber {
  /** Every message received so far, in arrival order. */
  messages: ReceivedMessage[];
  /** First message (already received or arriving within timeoutMs) matching the predicate. */
  waitFor(predicate: (m: ReceivedMessage) => boolean, timeoutMs: number): Promise<ReceivedMessage>;
  /** Resolve once at least n messages (optionally only those matching) have arrived; returns them. */
  waitForCount(n: number, timeoutMs: number, predicate?: (m: ReceivedMessage) => boolean): Promise<ReceivedMessage[]>;
  /** Messages on exactly this topic. */
  on(topic: string): ReceivedMessage[];
  /** Forget messages received so far. */
  clear(): void;
  client: MqttClient;
  close(): Promise<void>;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Connect to `url`, subscribe to `topics` (wildcards allowed), and record what arrives. */
export async function subscribe(url: string, topics: string[], opts: SubscribeOptions = {}): Promise<Subscriber> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const clientOpts: IClientOptions = {
    protocolVersion: opts.protocolVersion ?? 5,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    clientId: opts.clientId ?? `p2m-test-sub-${process.pid}-${Math.random().toString(16).slice(2, 10)}`,
    username: opts.username,
    password: opts.password,
    ca: opts.ca ?? (opts.caFile ? readFileSync(opts.caFile) : undefined),
  };
  const client = await withTimeout(mqtt.connectAsync(url, clientOpts), timeoutMs, `connect to ${url}`);
  const messages: ReceivedMessage[] = [];
  const listeners = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    const text = payload.toString('utf8');
    const userProperties = packet.properties?.userProperties as Record<string, string | string[]> | undefined;
    messages.push({ topic, payload, retain: packet.retain, qos: packet.qos, text, json: parseJson(text), receivedAt: Date.now(), ...(userProperties ? { userProperties } : {}) });
    for (const l of [...listeners]) l();
  });
  try {
    const granted = await withTimeout(client.subscribeAsync(topics, { qos: opts.qos ?? 1 }), timeoutMs, `subscribe ${topics.join(',')}`);
    const refused = granted.filter((g) => (g.qos as number) >= 0x80);
    if (refused.length) throw new Error(`subscription refused: ${refused.map((g) => g.topic).join(', ')}`);
  } catch (err) {
    client.end(true);
    throw err;
  }

  const waitForCount = (n: number, ms: number, predicate?: (m: ReceivedMessage) => boolean): Promise<ReceivedMessage[]> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hits = predicate ? messages.filter(predicate) : messages;
        if (hits.length >= n) {
          done();
          resolve(hits.slice());
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        const seen = messages.map((m) => `${m.topic}${m.retain ? ' (retained)' : ''}: ${m.text.slice(0, 120)}`).join('\n  ');
        reject(new Error(`timed out after ${ms} ms waiting for ${n} message(s); received ${messages.length}:\n  ${seen}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(onMsg);
      };
      const onMsg = () => void check();
      if (!check()) listeners.add(onMsg);
    });

  return {
    messages,
    waitFor: async (predicate, ms) => (await waitForCount(1, ms, predicate))[0]!,
    waitForCount,
    on: (topic) => messages.filter((m) => m.topic === topic),
    clear: () => void messages.splice(0, messages.length),
    client,
    close: async () => {
      await withTimeout(client.endAsync(), 3_000, 'close').catch(() => client.end(true));
    },
  };
}

/**
 * What a newcomer (a restarted Home Assistant) finds retained under `topics`, by topic. The broker sends retained
 * messages on subscription, before a marker published afterwards: the marker's arrival bounds the wait, no sleep.
 */
export async function retainedNow(url: string, topics: string[], timeoutMs = 10_000): Promise<Map<string, ReceivedMessage>> {
  const marker = `p2m-test/marker/${Math.random().toString(16).slice(2, 10)}`;
  const s = await subscribe(url, [...topics, marker]);
  try {
    await s.client.publishAsync(marker, 'end', { qos: 1 });
    await s.waitFor((m) => m.topic === marker, timeoutMs);
  } finally {
    await s.close();
  }
  const out = new Map<string, ReceivedMessage>();
  for (const m of s.messages) if (m.retain) out.set(m.topic, m);
  return out;
}

/** Sends a bridge request (`<base>/bridge/request/<cmd>`, JSON with a transaction) and waits for its response. */
export async function bridgeRequest(sub: Subscriber, cmd: string, tx: string, payload: Record<string, unknown> = {}, o: { base?: string; timeoutMs?: number } = {}): Promise<{ status: string; data?: any; error?: string }> {
  const base = o.base ?? 'pop2mqtt';
  await sub.client.publishAsync(`${base}/bridge/request/${cmd}`, JSON.stringify({ ...payload, transaction: tx }), { qos: 1 });
  const got = await sub.waitFor((m) => m.topic === `${base}/bridge/response/${cmd}` && (m.json as { transaction?: string })?.transaction === tx, o.timeoutMs ?? 30_000);
  return got.json as { status: string };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
