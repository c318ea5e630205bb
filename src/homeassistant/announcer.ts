// Home Assistant discovery on the broker: announces the configs of the current model, clears removed and stale ones, and has everything announced again when Home Assistant comes online.
import { errorText, silentLogger, type Logger } from '../log.js';
import type { MessageInfo, MqttLink } from '../mqtt/link.js';
import { RESERVED_MAILBOX_IDS } from '../mqtt/topics.js';
import { buildDiscovery, discoveryFilter, type DiscoveryMessage } from './discovery.js';
import { resolveHaSettings, type HaSettings, type ResolvedHaSettings } from './settings.js';
import type { HaModel } from './types.js';

export interface AnnouncerOptions {
  /** the entities to announce, read at every announcement */
  model: () => HaModel;
  ha?: HaSettings;
  version: string;
  /** origin.support_url in discovery */
  supportUrl?: string;
  /** how long to listen for our old retained discovery configs at the first connection (ms); default 1500 */
  scanMs?: number;
  logger?: Logger;
  /** Has every retained message published again (the bridge's, then `publish(true)`): on Home Assistant's birth message. */
  republish: (reason: string) => Promise<void>;
}

const RETAINED = { qos: 1 as const, retain: true };

export class DiscoveryAnnouncer {
  private readonly link: MqttLink;
  private readonly opts: AnnouncerOptions;
  private readonly ha: ResolvedHaSettings;
  private readonly log: Logger;
  private readonly base: string;
  private readonly scanMs: number;
  /** discovery topic -> JSON payload, as last announced */
  private announced = new Map<string, string>();
  /** The scan for stale configs, run before the first announcement (again after one that failed). */
  private staleScan: Promise<void> | undefined;
  private stopped = false;

  private readonly onHaStatus = (_topic: string, payload: Buffer) => {
    if (payload.toString('utf8').trim() !== this.ha.birthPayload) return;
    this.log.info('Home Assistant came online; announcing discovery again');
    void this.opts.republish('homeassistant online');
  };

  constructor(link: MqttLink, opts: AnnouncerOptions) {
    this.link = link;
    this.opts = opts;
    this.ha = resolveHaSettings(opts.ha);
    this.log = (opts.logger ?? silentLogger).child('homeassistant');
    this.base = link.baseTopic;
    this.scanMs = opts.scanMs ?? 1500;
  }

  /** Listens for Home Assistant's birth message (the subscription is renewed after every reconnect). */
  async start(): Promise<void> {
    await this.link.subscribe(this.ha.statusTopic, this.onHaStatus);
  }

  /** Stops listening for Home Assistant's birth message; announces nothing more. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.link.unsubscribe(this.ha.statusTopic, this.onHaStatus).catch(() => {});
  }

  /**
   * Publishes every current config (`full`, after a connect: the broker may have lost them) or only the changed
   * ones, and deletes the ones no longer current. The first time (at start, or when the extension was started by a
   * reload), stale configs of an earlier run under the prefix are cleared first.
   */
  async publish(full: boolean): Promise<void> {
    if (this.stopped || !this.link.connected) return; // the next connect announces everything
    await (this.staleScan ??= this.removeStaleDiscovery().catch((err: unknown) => {
      this.staleScan = undefined;
      throw err;
    }));
    await this.announceDiscovery(full);
  }

  /**
   * Clears every config announced (empty retained payloads), after stop(), when a reload switched discovery off
   * (`images`: the snapshots their image entities showed go too) or moved it to another prefix (the configs under
   * the new prefix show the same snapshots). Offline (or cut off meanwhile), what is not cleared stays: logged.
   */
  async withdraw(o: { images: boolean }): Promise<void> {
    const count = this.announced.size;
    if (count === 0) return;
    try {
      if (!this.link.connected) throw new Error('broker not connected');
      await this.clear([...this.announced], o.images ? [] : null);
      this.log.info('removed Home Assistant entities: discovery switched off or moved', { prefix: this.ha.prefix, count });
    } catch (err) {
      this.log.warn('Home Assistant configs not cleared; they stay on the broker', { prefix: this.ha.prefix, count, error: errorText(err) });
    }
    this.announced.clear();
  }

  /** The discovery topics currently announced (for diagnostics and tests). */
  announcedTopics(): string[] {
    return [...this.announced.keys()];
  }

  private buildDiscovery(): DiscoveryMessage[] {
    const model = this.opts.model();
    for (const mb of model.mailboxes) {
      if (RESERVED_MAILBOX_IDS.includes(mb.id)) this.log.warn('mailbox id collides with a reserved topic level', { mailbox: mb.id });
    }
    const { messages, problems } = buildDiscovery(model, {
      base: this.base, prefix: this.ha.prefix, version: this.opts.version, supportUrl: this.opts.supportUrl,
    });
    for (const p of problems) this.log.warn(p);
    return messages;
  }

  private async announceDiscovery(all: boolean): Promise<void> {
    const next = new Map<string, string>();
    for (const m of this.buildDiscovery()) next.set(m.topic, JSON.stringify(m.payload));
    const removed = [...this.announced.keys()].filter((t) => !next.has(t));
    const changed = [...next].filter(([t, p]) => all || this.announced.get(t) !== p);
    await this.clear(removed.map((t) => [t, this.announced.get(t)!]), [...next.values()]);
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
    const stale = [...found].filter(([t]) => !current.has(t));
    await this.clear(stale, currentMessages.map((m) => JSON.stringify(m.payload)));
    if (stale.length) this.log.info('removed stale Home Assistant entities', { count: stale.length });
  }

  /**
   * Deletes configs (topic, JSON payload) with empty retained payloads, and the snapshots their image entities
   * showed unless a config in `currentConfigs` still shows them (`null`: keep every snapshot).
   */
  private async clear(configs: Array<[string, string]>, currentConfigs: string[] | null): Promise<void> {
    const images = currentConfigs ? this.orphanImages(configs.map(([, p]) => p), currentConfigs) : [];
    await Promise.all([...configs.map(([t]) => t), ...images].map((t) => this.link.publish(t, '', RETAINED)));
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
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
