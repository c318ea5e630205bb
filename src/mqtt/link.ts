// One connection to the MQTT broker: TLS/auth settings, last will, own reconnect backoff, publishes that resolve on PUBACK.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';
import { errorText, maskTokensInPublication, redact, registerSecret, silentLogger, type Logger } from '../log.js';
import { withTimeout } from '../with-timeout.js';
import { reconnectDelay } from '../backoff.js';
import { MAX_INCOMING_PACKET_BYTES } from './requests.js';
import { OversizeFilter } from './oversize-filter.js';
import { InFlightStore } from './in-flight-store.js';
import { MqttLinkError } from './errors.js';
import {
  DEFAULT_BASE_TOPIC, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS, DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_RECONNECT_MIN_MS, type MqttSettings,
} from './settings.js';
import { topicMatches } from './topic-match.js';

export type QoS = 0 | 1 | 2;

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** MQTT 5 only; ignored (with a debug log) on 3.1.1 */
  properties?: { userProperties?: Record<string, string> };
}

export interface MessageInfo { retain: boolean }
export type MessageHandler = (topic: string, payload: Buffer, info: MessageInfo) => void;

export interface MqttLinkOptions {
  logger?: Logger;
  version: string;
  /** where the last will `{"state":"offline"}` goes; default `<base>/bridge/state` */
  willTopic?: string;
}

/** The payloads of `<base>/bridge/state`. */
export const BRIDGE_STATE_ONLINE = JSON.stringify({ state: 'online' });
export const BRIDGE_STATE_OFFLINE = JSON.stringify({ state: 'offline' });

const STOP_BUDGET_MS = 3_000;
const SUPPORTED_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:']);

/**
 * One connection to the broker.
 * Events: 'connect' (first connect and every reconnect), 'offline' (connection lost), 'error' (only emitted when
 * someone listens; otherwise logged).
 * Publishes are never queued while offline: they reject at once so the caller's disk outbox stays authoritative.
 */
export class MqttLink extends EventEmitter {
  readonly baseTopic: string;
  readonly willTopic: string;
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;

  private readonly settings: MqttSettings;
  private readonly log: Logger;
  private readonly version: string;
  private client: MqttClient | undefined;
  private isConnected = false;
  private starting = false;
  private stopping = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Ends start()'s wait for the first connect (and its warning timer): stop() calls it, so no timer outlives the link. */
  private stopWaiting: (() => void) | undefined;
  private readonly subscriptions = new Map<string, Set<MessageHandler>>();
  private readonly pending = new Set<(err: MqttLinkError) => void>();
  /** MQTT.js's outgoing Store: publishes waiting for their ack, never replayed after a reconnect. */
  private readonly inFlight = new InFlightStore();

  constructor(settings: MqttSettings, opts: MqttLinkOptions) {
    super();
    this.settings = settings;
    this.log = (opts.logger ?? silentLogger).child('mqtt');
    this.version = opts.version;
    this.baseTopic = trimSlashes(settings.base_topic || DEFAULT_BASE_TOPIC);
    this.willTopic = opts.willTopic ?? `${this.baseTopic}/bridge/state`;
    this.clientId = settings.client_id || `pop2mqtt_${Math.random().toString(16).slice(2, 10)}`;
    this.protocolVersion = settings.protocol_version === 5 ? 5 : 4;
    registerSecret(settings.password);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /**
   * Begins connecting. Resolves once connected, or after the connect timeout (the link keeps retrying in the
   * background). Rejects only on unusable settings (bad URL scheme, unreadable TLS file).
   * `wait: false` resolves as soon as the settings are checked (`once` polls meanwhile: its alerts wait in the disk
   * outbox for the 'connect' event). The MQTT client is then loaded and connected two turns of the event loop
   * later, after the caller's next steps: `once` has its POP3 connection under way by then, so that compiling the
   * client overlaps the server's part of the TLS handshake. The warning after the connect timeout is logged all the same.
   */
  async start(o: { wait?: boolean } = {}): Promise<void> {
    if (this.starting) throw new MqttLinkError('MQTT_SETTINGS', 'MqttLink.start() called twice', false);
    if (this.stopped) throw new MqttLinkError('MQTT_STOPPED', 'MqttLink was stopped', false);
    this.starting = true;
    const options = await this.buildClientOptions();
    if (o.wait !== false) {
      await (await this.open(options));
      return;
    }
    // Two turns: in the first, a connection the caller opened meanwhile completes (on loopback at once) and its TLS
    // ClientHello goes out; the server works on it while this process compiles the MQTT client.
    setImmediate(() => setImmediate(() => {
      if (this.stopping || this.stopped) return;
      this.open(options).catch((err) => this.log.error('the MQTT client could not be started', { error: errorText(err) }));
    }));
  }

  /** Creates the client and connects; resolves (once the client exists) with the wait for the first connect or the connect timeout. */
  private async open(options: IClientOptions): Promise<Promise<void>> {
    // The MQTT client is a chunk of its own in the bundle, read when the link starts. `.default` is the package's
    // module.exports, whether the import is Node's (CommonJS seen from ESM) or the bundle's.
    const { connect } = (await import('mqtt')).default;
    // stop() may have come while the module loaded: no client after it.
    if (this.stopping || this.stopped) return Promise.resolve();
    const url = this.settings.url;
    const client = connect(url, options);
    if (this.protocolVersion === 4) {
      // MQTT 3.1.1 cannot ask the broker for a size limit: drop an oversized PUBLISH's payload as it streams in.
      const internal = client as unknown as { streamBuilder: (c: MqttClient) => Duplex };
      const build = internal.streamBuilder;
      internal.streamBuilder = (c) => new OversizeFilter(build(c), MAX_INCOMING_PACKET_BYTES, (bytes) =>
        this.log.warn('oversized message from the broker dropped as it arrived (MQTT 3.1.1)', { bytes }));
    }
    this.client = client;
    client.on('connect', () => this.onConnect());
    client.on('close', () => this.onClose());
    client.on('error', (err) => this.onError(err));
    client.on('disconnect', (packet) => {
      // MQTT 5 server-side DISCONNECT, e.g. 0x8E "session taken over" when another client uses the same client_id.
      this.log.warn('broker sent DISCONNECT', { reason: packet.reasonCode, client_id: this.clientId });
    });
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, { retain: !!packet.retain }));
    this.log.info('connecting', { url: safeUrl(url), client_id: this.clientId, protocol: this.protocolVersion });
    client.connect();

    const waitMs = this.settings.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise<void>((resolve) => {
      const done = () => { clearTimeout(timer); this.off('connect', done); this.stopWaiting = undefined; resolve(); };
      const timer = setTimeout(() => {
        this.log.warn('broker not reachable yet; continuing and retrying in the background', { url: safeUrl(url) });
        done();
      }, waitMs);
      this.once('connect', done);
      this.stopWaiting = done;
    });
  }

  /**
   * Publishes one message. Resolves when the broker acknowledged it (PUBACK for QoS 1, PUBCOMP for QoS 2) or, for
   * QoS 0, when it was written. Rejects with MqttLinkError: MQTT_OFFLINE at once when not connected,
   * MQTT_DISCONNECTED when the connection drops before the acknowledgement, MQTT_REJECTED on an MQTT 5 failure code.
   */
  publish(topic: string, payload: string | Buffer, o: PublishOptions = {}): Promise<void> {
    if (this.stopping || this.stopped) return Promise.reject(new MqttLinkError('MQTT_STOPPED', 'MQTT link is stopped', false));
    return this.send(topic, payload, o);
  }

  /** Subscribes `handler` to `filter`; the subscription is renewed after every reconnect. */
  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    let handlers = this.subscriptions.get(filter);
    const isNew = !handlers;
    if (!handlers) { handlers = new Set(); this.subscriptions.set(filter, handlers); }
    handlers.add(handler);
    if (!isNew || !this.isConnected || !this.client) return; // renewed at the next connect
    try {
      await this.subscribeOnBroker([filter]);
    } catch (err) {
      if (err instanceof MqttLinkError && err.code === 'MQTT_REJECTED') {
        handlers.delete(handler);
        if (handlers.size === 0) this.subscriptions.delete(filter);
        throw err;
      }
      // Connection dropped during SUBSCRIBE: it is renewed on reconnect, nothing to report.
      this.log.debug('subscribe interrupted; will renew on reconnect', { filter });
    }
  }

  /** Removes `handler` (or every handler) from `filter`; unsubscribes at the broker when none is left. */
  async unsubscribe(filter: string, handler?: MessageHandler): Promise<void> {
    const handlers = this.subscriptions.get(filter);
    if (!handlers) return;
    if (handler) handlers.delete(handler); else handlers.clear();
    if (handlers.size > 0) return;
    this.subscriptions.delete(filter);
    if (this.isConnected && this.client) {
      try { await this.client.unsubscribeAsync(filter); } catch (err) {
        this.log.debug('unsubscribe failed', { filter, error: errorText(err) });
      }
    }
  }

  /** Publishes `{"state":"offline"}` retained, then disconnects cleanly; bounded to about 3 s. */
  async stop(): Promise<void> {
    if (this.stopped || this.stopping) return;
    this.stopping = true;
    this.clearReconnectTimer();
    this.stopWaiting?.();
    const client = this.client;
    const started = Date.now();
    if (client && this.isConnected) {
      try {
        await withTimeout(this.send(this.willTopic, BRIDGE_STATE_OFFLINE, { qos: 1, retain: true }), STOP_BUDGET_MS / 2, noAnswer);
      } catch (err) {
        this.log.warn('could not publish offline state on stop', { error: errorText(err) });
      }
    }
    if (client) {
      const left = Math.max(100, STOP_BUDGET_MS - (Date.now() - started) - 100);
      try {
        await withTimeout(client.endAsync(!this.isConnected), left, noAnswer);
      } catch {
        client.end(true);
      }
    }
    this.isConnected = false;
    this.rejectPending(new MqttLinkError('MQTT_STOPPED', 'MQTT link stopped before the broker acknowledged', true));
    this.stopped = true;
    this.stopping = false;
    this.log.info('disconnected');
  }

  // ---------------------------------------------------------------- internals

  private send(topic: string, payload: string | Buffer, o: PublishOptions): Promise<void> {
    const client = this.client;
    if (!client || !this.isConnected) {
      return Promise.reject(new MqttLinkError('MQTT_OFFLINE', `not connected to the broker; cannot publish to ${topic}`));
    }
    const qos: QoS = o.qos ?? this.settings.qos ?? 1;
    const pubOpts: IClientPublishOptions = { qos, retain: o.retain ?? false };
    // Every publication passes here: command tokens (shared secrets) that mail carried in are masked in the topic,
    // the payload and the user properties, whichever path built them (alerts, HA events and images, status, responses).
    const safe = maskTokensInPublication(topic, payload, o.properties?.userProperties);
    if (safe.masked) this.log.warn('a command token was masked in a publication', { topic: safe.topic });
    topic = safe.topic;
    payload = safe.payload;
    if (safe.userProperties) {
      if (this.protocolVersion === 5) pubOpts.properties = { userProperties: { ...safe.userProperties } };
      else this.log.debug('user properties need MQTT 5; dropped', { topic });
    }
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: MqttLinkError) => { if (!settled) { settled = true; reject(err); } };
      this.pending.add(fail);
      client.publish(topic, payload, pubOpts, (err) => {
        this.pending.delete(fail);
        if (settled) return;
        settled = true;
        if (err) reject(toLinkError(err, `publish to ${topic}`));
        else resolve();
      });
    });
  }

  private async buildClientOptions(): Promise<IClientOptions> {
    const s = this.settings;
    let parsed: URL;
    try {
      parsed = new URL(s.url);
    } catch {
      throw new MqttLinkError('MQTT_SETTINGS', 'mqtt.url: not a valid URL', false);
    }
    if (!SUPPORTED_PROTOCOLS.has(parsed.protocol)) {
      throw new MqttLinkError('MQTT_SETTINGS', `mqtt.url: unsupported scheme ${parsed.protocol} (use mqtt, mqtts, ws or wss)`, false);
    }
    if (parsed.password) registerSecret(decodeURIComponent(parsed.password));
    const keepaliveMs = s.keepalive ?? DEFAULT_KEEPALIVE_MS;
    const options: IClientOptions = {
      manualConnect: true,
      clientId: this.clientId,
      protocolVersion: this.protocolVersion,
      clean: true,
      keepalive: keepaliveMs <= 0 ? 0 : Math.max(1, Math.round(keepaliveMs / 1000)),
      reconnectPeriod: 0, // reconnects are ours: capped exponential backoff with jitter
      connectTimeout: s.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
      queueQoSZero: false,
      resubscribe: false, // subscriptions are renewed by onConnect()
      // mqtt-packet's default pre-builds 65,536 two-byte Buffers for packet ids at the first connect: about 20 MiB of
      // heap (RSS 67 -> 56 MiB for a bare connect). Building the two bytes per packet costs nothing at our rates.
      writeCache: false,
      outgoingStore: this.inFlight,
      will: {
        topic: this.willTopic,
        payload: Buffer.from(BRIDGE_STATE_OFFLINE),
        qos: 1,
        retain: true,
      },
    };
    // MQTT 5: the broker must not send us a packet above this (a 200 MB request would otherwise be buffered whole).
    if (this.protocolVersion === 5) options.properties = { maximumPacketSize: MAX_INCOMING_PACKET_BYTES };
    if (s.username !== undefined && s.username !== '') options.username = s.username;
    if (s.password !== undefined && s.password !== '') options.password = s.password;
    if ((options.password !== undefined || parsed.password) && (parsed.protocol === 'mqtt:' || parsed.protocol === 'ws:') && !isLoopbackHost(parsed.hostname)) {
      this.log.warn('the broker password is sent in cleartext: the broker is not on this host and the URL is not TLS; use mqtts:// or wss://', { url: safeUrl(s.url) });
    }
    if (s.ca_file) options.ca = await readSettingFile('mqtt.ca_file', s.ca_file);
    if (s.cert_file || s.key_file) {
      if (!s.cert_file || !s.key_file) {
        throw new MqttLinkError('MQTT_SETTINGS', `mqtt.${s.cert_file ? 'key_file' : 'cert_file'}: required together with mqtt.${s.cert_file ? 'cert_file' : 'key_file'}`, false);
      }
      options.cert = await readSettingFile('mqtt.cert_file', s.cert_file);
      options.key = await readSettingFile('mqtt.key_file', s.key_file);
    }
    if (parsed.protocol === 'mqtts:' || parsed.protocol === 'wss:') options.rejectUnauthorized = true;
    return options;
  }

  private onConnect(): void {
    this.isConnected = true;
    this.attempt = 0;
    this.clearReconnectTimer();
    this.log.info('connected', { url: safeUrl(this.settings.url), version: this.version });
    const filters = [...this.subscriptions.keys()];
    const renew = filters.length ? this.subscribeOnBroker(filters) : Promise.resolve();
    renew
      .catch((err) => this.log.warn('renewing subscriptions failed', { error: errorText(err) }))
      .finally(() => { if (this.isConnected) this.emit('connect'); });
  }

  private onClose(): void {
    const wasConnected = this.isConnected;
    this.isConnected = false;
    this.rejectPending(new MqttLinkError('MQTT_DISCONNECTED', 'connection to the broker lost before acknowledgement'));
    this.dropInFlight();
    if (this.stopping || this.stopped) return;
    if (wasConnected) {
      this.log.warn('connection to broker lost');
      this.emit('offline');
    }
    this.scheduleReconnect();
  }

  private onError(err: Error): void {
    const text = redact(err.message);
    this.log.warn('mqtt error', { error: text });
    if (this.listenerCount('error') > 0) {
      const e = new Error(text);
      (e as Error & { code?: unknown }).code = (err as Error & { code?: unknown }).code;
      this.emit('error', e);
    }
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.stopping || this.stopped || !this.client) return;
    const min = this.settings.reconnect?.min ?? DEFAULT_RECONNECT_MIN_MS;
    const max = this.settings.reconnect?.max ?? DEFAULT_RECONNECT_MAX_MS;
    const delay = reconnectDelay(this.attempt++, { min, max });
    this.log.debug('reconnecting later', { delay_ms: delay, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopping || this.stopped || !this.client) return;
      // Without stores, reconnect() swaps in MQTT.js's default Store, which would replay unacknowledged publishes.
      this.client.reconnect({ outgoingStore: this.inFlight });
    }, delay);
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer) { clearTimeout(this.reconnectTimer); this.reconnectTimer = undefined; }
  }

  private rejectPending(err: MqttLinkError): void {
    const fails = [...this.pending];
    this.pending.clear();
    for (const fail of fails) fail(err);
  }

  /**
   * Forget the publishes that lost their connection before the ack: the outbox owns retries (the Store never replays
   * them), and a clean end() must not wait for acks that cannot come. removeOutgoingMessage() also frees the Store entry.
   */
  private dropInFlight(): void {
    const client = this.client;
    if (!client) return;
    for (const id of this.inFlight.messageIds()) {
      try { client.removeOutgoingMessage(id); } catch { /* already gone */ }
    }
  }

  private async subscribeOnBroker(filters: string[]): Promise<void> {
    const client = this.client;
    if (!client) return;
    let granted;
    try {
      granted = await client.subscribeAsync(filters, { qos: 1 });
    } catch (err) {
      throw toLinkError(err, `subscribe to ${filters.join(', ')}`);
    }
    const refused = granted.filter((g) => g.qos > 2).map((g) => g.topic);
    if (refused.length) throw new MqttLinkError('MQTT_REJECTED', `broker refused subscription to ${refused.join(', ')}`, false);
  }

  private dispatch(topic: string, payload: Buffer, info: MessageInfo): void {
    for (const [filter, handlers] of this.subscriptions) {
      if (!topicMatches(filter, topic)) continue;
      for (const handler of handlers) {
        try {
          handler(topic, payload, info);
        } catch (err) {
          this.log.error('message handler failed', { topic, error: errorText(err) });
        }
      }
    }
  }
}

async function readSettingFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new MqttLinkError('MQTT_SETTINGS', `${key}: cannot read ${path} (${code})`, false);
  }
}

function toLinkError(err: unknown, what: string): MqttLinkError {
  if (err instanceof MqttLinkError) return err;
  const e = err as Error & { code?: unknown };
  const msg = redact(e?.message ?? String(err));
  if (typeof e?.code === 'number' && e.code >= 0x80) {
    return new MqttLinkError('MQTT_REJECTED', `${what}: broker rejected it: ${msg} (reason 0x${e.code.toString(16)})`, false);
  }
  return new MqttLinkError('MQTT_DISCONNECTED', `${what}: ${msg}`);
}

/** True for 127.0.0.0/8, ::1 and localhost: a password sent there never crosses a network. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  if (/^127(\.\d{1,3}){3}$/.test(h)) return true;
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/** The URL without user info, for logs. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

const noAnswer = (ms: number) => new MqttLinkError('MQTT_TIMEOUT', `no answer within ${ms} ms`);

function trimSlashes(topic: string): string {
  return topic.replace(/^\/+|\/+$/g, '');
}
