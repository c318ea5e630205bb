// Home Assistant discovery on the broker: announces the configs of the current model, clears removed and stale ones, and has everything announced again when Home Assistant comes online.
import { silentLogger, type Logger } from '../log.js';
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
  private staleScanDone = false;

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

  async stop(): Promise<void> {
    await this.link.unsubscribe(this.ha.statusTopic, this.onHaStatus).catch(() => {});
  }

  /**
   * Publishes every current config (`full`, after a connect: the broker may have lost them; the first time, after
   * clearing stale configs of an earlier run) or only the changed ones, and deletes the ones no longer current.
   */
  async publish(full: boolean): Promise<void> {
    if (!this.link.connected) return; // the next connect announces everything
    if (full && !this.staleScanDone) await this.removeStaleDiscovery();
    await this.announceDiscovery(full);
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
    const images = this.orphanImages(stale.map((t) => found.get(t)!), currentMessages.map((m) => JSON.stringify(m.payload)));
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
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
