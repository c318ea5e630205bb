// The agent's face on MQTT (Zigbee2MQTT style): availability, bridge info, mailbox status, request/response commands, HA discovery.
import { errorText, silentLogger, type Logger } from '../log.js';
import { withTimeout } from '../with-timeout.js';
import { buildDiscovery, discoveryFilter, type DiscoveryMessage } from './discovery.js';
import { BRIDGE_STATE_ONLINE, type MessageInfo, type MqttLink } from './link.js';
import { oversizeOf } from './oversize-filter.js';
import { isBridgeCommand, makeResponse, MAX_REQUEST_BYTES, parseRequest, tooLargeError, type BridgeCommand, type BridgeResponse, type ParsedRequest } from './requests.js';
import { resolveHaSettings, type HaSettings, type ResolvedHaSettings } from './settings.js';
import {
  bridgeInfoTopic, bridgeStateTopic, mailboxStatusTopic, requestTopic, responseTopic, RESERVED_MAILBOX_IDS,
} from './topics.js';
import type { BridgeHandlers, MailboxStatus } from './types.js';

export type { BridgeHandlers, BridgeInfo, HaMailbox, HaModel, HaRule, MailboxStatus } from './types.js';

export interface BridgeOptions {
  logger?: Logger;
  ha?: HaSettings;
  version: string;
  /** origin.support_url in discovery */
  supportUrl?: string;
  /** how long to listen for our old retained discovery configs at start (ms); default 1500 */
  discoveryScanMs?: number;
  /** requests of one command waiting behind the running one; more are answered "busy"; default 4 */
  maxQueuedRequests?: number;
  /** a request whose handler takes longer is answered with an error (the handler keeps running); default 300 s */
  requestTimeoutMs?: number;
}

interface CommandQueue {
  running: boolean;
  waiting: Array<() => Promise<void>>;
}

const QOS1 = { qos: 1 as const };
const RETAINED = { qos: 1 as const, retain: true };

export class Bridge {
  private readonly link: MqttLink;
  private readonly handlers: BridgeHandlers;
  private readonly log: Logger;
  private readonly version: string;
  private readonly ha: ResolvedHaSettings;
  private readonly supportUrl: string | undefined;
  private readonly scanMs: number;
  private readonly maxQueued: number;
  private readonly requestTimeoutMs: number;
  private readonly base: string;

  private readonly statuses = new Map<string, MailboxStatus>();
  /** discovery topic -> JSON payload, as last announced */
  private announced = new Map<string, string>();
  private readonly queues = new Map<string, CommandQueue>();
  private started = false;
  private stopped = false;
  private staleScanDone = false;
  private republishRunning: Promise<void> | null = null;
  private republishAgain = false;

  private readonly onConnect = () => { void this.republishAll('reconnect'); };
  private readonly onRequest = (topic: string, payload: Buffer, info: MessageInfo) => this.handleRequest(topic, payload, info);
  private readonly onHaStatus = (_topic: string, payload: Buffer) => {
    if (payload.toString('utf8').trim() !== this.ha.birthPayload) return;
    this.log.info('Home Assistant came online; announcing discovery again');
    void this.republishAll('homeassistant online');
  };

  constructor(link: MqttLink, handlers: BridgeHandlers, opts: BridgeOptions) {
    this.link = link;
    this.handlers = handlers;
    this.log = (opts.logger ?? silentLogger).child('bridge');
    this.version = opts.version;
    this.ha = resolveHaSettings(opts.ha);
    this.supportUrl = opts.supportUrl;
    this.scanMs = opts.discoveryScanMs ?? 1500;
    this.maxQueued = opts.maxQueuedRequests ?? 4;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 300_000;
    this.base = link.baseTopic;
  }

  /**
   * Subscribes to `bridge/request/+` (and the Home Assistant status topic), publishes online state, info, statuses and
   * discovery now if connected, and again after every reconnect.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.link.on('connect', this.onConnect);
    await this.link.subscribe(requestTopic(this.base, '+'), this.onRequest);
    if (this.ha.discovery) await this.link.subscribe(this.ha.statusTopic, this.onHaStatus);
    if (this.link.connected) await this.republishAll('start');
  }

  /** Publishes `<base>/<id>/status` retained and remembers it for republishing after reconnects. Never throws when offline. */
  async publishMailboxStatus(id: string, status: MailboxStatus): Promise<void> {
    this.statuses.set(id, status);
    if (this.stopped || !this.link.connected) return;
    try {
      await this.link.publish(mailboxStatusTopic(this.base, id), this.json(status), RETAINED);
    } catch (err) {
      this.log.debug('mailbox status not published; will be republished on reconnect', { mailbox: id, error: errorText(err) });
    }
  }

  /** After a config reload: republishes info and discovery, and deletes entities and statuses no longer in the config. */
  async refresh(): Promise<void> {
    if (this.stopped || !this.started) return;
    const ids = this.safeInfoMailboxIds();
    const current = new Set(ids ?? []);
    const removedStatus = ids ? [...this.statuses.keys()].filter((id) => !current.has(id)) : [];
    for (const id of removedStatus) this.statuses.delete(id);
    if (!this.link.connected) return; // the next connect republishes everything
    try {
      await this.link.publish(bridgeInfoTopic(this.base), this.json(this.handlers.info()), RETAINED);
      await Promise.all(removedStatus.map((id) => this.link.publish(mailboxStatusTopic(this.base, id), '', RETAINED)));
      if (this.ha.discovery) await this.announceDiscovery();
    } catch (err) {
      this.log.warn('refresh incomplete; will be repeated on reconnect', { error: errorText(err) });
    }
  }

  /** Stops answering requests. The offline state is published by MqttLink.stop(). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.link.off('connect', this.onConnect);
    await this.link.unsubscribe(requestTopic(this.base, '+'), this.onRequest).catch(() => {});
    if (this.ha.discovery) await this.link.unsubscribe(this.ha.statusTopic, this.onHaStatus).catch(() => {});
    for (const q of this.queues.values()) q.waiting.length = 0;
  }

  /** The discovery topics currently announced (for diagnostics and tests). */
  announcedTopics(): string[] {
    return [...this.announced.keys()];
  }

  // ------------------------------------------------------------- republishing

  /** Runs one full republish; concurrent calls coalesce into one more run after the current one. */
  private republishAll(reason: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.republishRunning) {
      this.republishAgain = true;
      return this.republishRunning;
    }
    const run = async () => {
      do {
        this.republishAgain = false;
        await this.republishOnce(reason);
      } while (this.republishAgain && !this.stopped);
    };
    this.republishRunning = run().finally(() => { this.republishRunning = null; });
    return this.republishRunning;
  }

  private async republishOnce(reason: string): Promise<void> {
    if (!this.link.connected) return;
    this.log.debug('publishing retained state', { reason });
    try {
      await this.link.publish(bridgeStateTopic(this.base), BRIDGE_STATE_ONLINE, RETAINED);
      await this.link.publish(bridgeInfoTopic(this.base), this.json(this.handlers.info()), RETAINED);
      await Promise.all([...this.statuses].map(([id, st]) =>
        this.link.publish(mailboxStatusTopic(this.base, id), this.json(st), RETAINED)));
      if (this.ha.discovery) {
        if (!this.staleScanDone) await this.removeStaleDiscovery();
        await this.announceDiscovery(true);
      }
    } catch (err) {
      this.log.warn('republishing retained state failed; will retry on reconnect', { reason, error: errorText(err) });
    }
  }

  private buildDiscovery(): DiscoveryMessage[] {
    const model = this.handlers.haEntities();
    for (const mb of model.mailboxes) {
      if (RESERVED_MAILBOX_IDS.includes(mb.id)) this.log.warn('mailbox id collides with a reserved topic level', { mailbox: mb.id });
    }
    const { messages, problems } = buildDiscovery(model, {
      base: this.base, prefix: this.ha.prefix, version: this.version, supportUrl: this.supportUrl,
    });
    for (const p of problems) this.log.warn(p);
    return messages;
  }

  /** Publishes every current config (all of them when `all`, else only changed ones) and deletes the ones no longer current. */
  private async announceDiscovery(all = false): Promise<void> {
    const next = new Map<string, string>();
    for (const m of this.buildDiscovery()) next.set(m.topic, this.json(m.payload));
    const removed = [...this.announced.keys()].filter((t) => !next.has(t));
    const changed = [...next].filter(([t, p]) => all || this.announced.get(t) !== p);
    const images = this.orphanImages(removed.map((t) => this.announced.get(t)!), [...next.values()]);
    await Promise.all([...removed, ...images].map((t) => this.link.publish(t, '', RETAINED)));
    for (const t of removed) this.announced.delete(t);
    await Promise.all(changed.map(([t, p]) => this.link.publish(t, p, RETAINED)));
    this.announced = next;
    if (removed.length) this.log.info('removed Home Assistant entities no longer configured', { count: removed.length });
    this.log.debug('discovery announced', { configs: next.size, published: changed.length });
  }

  /**
   * Listens briefly for retained configs under our discovery node id (left by an earlier run) and clears the ones the
   * current model no longer has. Runs once, on the first connection.
   */
  private async removeStaleDiscovery(): Promise<void> {
    const currentMessages = this.buildDiscovery();
    const current = new Set(currentMessages.map((m) => m.topic));
    const found = new Map<string, string>();
    const filter = discoveryFilter(this.ha.prefix, this.base);
    const collect = (topic: string, payload: Buffer, info: MessageInfo) => {
      if (info.retain && payload.length > 0) found.set(topic, payload.toString('utf8'));
    };
    await this.link.subscribe(filter, collect);
    try {
      await delay(this.scanMs);
    } finally {
      await this.link.unsubscribe(filter, collect);
    }
    const stale = [...found.keys()].filter((t) => !current.has(t));
    const images = this.orphanImages(stale.map((t) => found.get(t)!), currentMessages.map((m) => this.json(m.payload)));
    await Promise.all([...stale, ...images].map((t) => this.link.publish(t, '', RETAINED)));
    if (stale.length) this.log.info('removed stale Home Assistant entities', { count: stale.length });
    this.staleScanDone = true;
  }

  /**
   * The retained snapshots that removed image entities showed (their `image_topic`), to clear with them: only topics
   * under our base topic, and none a current entity still shows.
   */
  private orphanImages(removedConfigs: string[], currentConfigs: string[]): string[] {
    const imageTopicOf = (json: string): string | null => {
      try {
        const t = (JSON.parse(json) as { image_topic?: unknown }).image_topic;
        return typeof t === 'string' && t.startsWith(`${this.base}/`) ? t : null;
      } catch {
        return null;
      }
    };
    const inUse = new Set(currentConfigs.map(imageTopicOf));
    return [...new Set(removedConfigs.map(imageTopicOf))].filter((t): t is string => t !== null && !inUse.has(t));
  }

  // ------------------------------------------------------------- requests

  private handleRequest(topic: string, payload: Buffer, info: MessageInfo): void {
    if (this.stopped) return;
    const cmd = topic.slice(requestTopic(this.base, '').length);
    if (info.retain) {
      this.log.warn('ignoring retained request (would replay on every reconnect)', { cmd });
      return;
    }
    const size = oversizeOf(payload) ?? payload.length;
    if (size > MAX_REQUEST_BYTES) {
      // Checked before anything reads the payload. MQTT 5: the broker does not send it; 3.1.1: its bytes were dropped
      // as they arrived (OversizeFilter), or it is just above the limit.
      this.log.warn('request too large; refused unparsed', { cmd, bytes: size });
      void this.respond(cmd, makeResponse({ error: tooLargeError(size) }));
      return;
    }
    if (!isBridgeCommand(cmd)) {
      void this.respond(cmd, makeResponse({ error: `unknown command "${cmd}"; known: poll, reload, status, test_rule` }));
      return;
    }
    const req = parseRequest(cmd, payload);
    if (!req.ok) {
      void this.respond(cmd, makeResponse({ error: req.error }, req.transaction));
      return;
    }
    let q = this.queues.get(cmd);
    if (!q) { q = { running: false, waiting: [] }; this.queues.set(cmd, q); }
    if (q.waiting.length >= this.maxQueued) {
      void this.respond(cmd, makeResponse({ error: `busy: too many pending ${cmd} requests` }, req.transaction));
      return;
    }
    q.waiting.push(() => this.runRequest(cmd, req));
    void this.drain(q);
  }

  private async drain(q: CommandQueue): Promise<void> {
    if (q.running) return;
    q.running = true;
    try {
      while (q.waiting.length && !this.stopped) {
        const job = q.waiting.shift()!;
        await job();
      }
    } finally {
      q.running = false;
    }
  }

  private async runRequest(cmd: BridgeCommand, req: Exclude<ParsedRequest, { ok: false }>): Promise<void> {
    let response: BridgeResponse;
    try {
      const data = await withTimeout(this.execute(req), this.requestTimeoutMs, (ms) => new Error(`${cmd} did not finish within ${ms} ms`));
      response = makeResponse({ data }, req.transaction);
    } catch (err) {
      response = makeResponse({ error: errorText(err) }, req.transaction);
    }
    await this.respond(cmd, response);
  }

  private async execute(req: Exclude<ParsedRequest, { ok: false }>): Promise<unknown> {
    switch (req.cmd) {
      case 'poll':
        return this.handlers.poll(req.mailbox);
      case 'reload':
        return this.handlers.reload(); // the agent's reload calls refresh()
      case 'status':
        return this.handlers.status();
      case 'test_rule':
        return this.handlers.testRule(req.message);
    }
  }

  private async respond(cmd: string, response: BridgeResponse): Promise<void> {
    try {
      await this.link.publish(responseTopic(this.base, cmd), this.json(response), QOS1);
    } catch (err) {
      this.log.warn('could not publish response', { cmd, error: errorText(err) });
    }
  }

  // ------------------------------------------------------------- helpers

  /**
   * Serialises what the bridge publishes. No blanket masking here: discovery configs, info and key names are ours
   * (a password `online` must not turn `payload_available` into `***`); error texts are masked where they are made
   * (errorText), and MqttLink masks command tokens in everything it sends.
   */
  private json(value: unknown): string {
    return JSON.stringify(value) ?? 'null';
  }

  private safeInfoMailboxIds(): string[] | null {
    try {
      return this.handlers.info().mailboxes.map((m) => m.id);
    } catch (err) {
      this.log.warn('bridge info unavailable', { error: errorText(err) });
      return null;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
