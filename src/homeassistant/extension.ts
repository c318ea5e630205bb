// The Home Assistant extension, loaded only with homeassistant.discovery: discovery, and per alert the event, image and binary_sensor publications Home Assistant's entities read.
import type { Publication } from '../alerts/build.js';
import type { Config, HomeAssistantConfig } from '../config/index.js';
import type { AgentEvents, Extension, ExtensionContext } from '../events.js';
import { clip, maskTokens } from '../log.js';
import { eventPayload, eventTopic, imageTopic } from '../mqtt/topics.js';
import type { RuleConfig, RuleMatch } from '../rules/index.js';
import { DiscoveryAnnouncer } from './announcer.js';
import { BinarySensors } from './binary-sensors.js';
import { HaEntityRegistry } from './entity-registry.js';
import type { HaModel, HaRule } from './types.js';
import { isoTime } from '../iso-time.js';

export class HomeAssistant implements Extension {
  private readonly announcer: DiscoveryAnnouncer;
  /** The `homeassistant:` settings it was started with: a reload that changes them replaces the extension (extensions.ts). */
  private readonly ha: HomeAssistantConfig;
  private binarySensors: BinarySensors | undefined;
  /** rule name -> content type of the image last published to its Home Assistant image topic */
  private readonly imageTypes: Map<string, string>;

  /** `previous`: the extension this one replaces at a reload; its image entities keep the content type of the image shown. */
  constructor(private readonly ctx: ExtensionContext, previous?: HomeAssistant) {
    this.ha = ctx.config().homeassistant;
    this.imageTypes = new Map(previous?.imageTypes);
    this.announcer = new DiscoveryAnnouncer(ctx.link, {
      model: () => this.model(), ha: this.ha, version: ctx.version, logger: ctx.logger,
      republish: (reason) => ctx.bridge.republish(reason),
    });
  }

  async start(): Promise<void> {
    const { events, logger, stateDir } = this.ctx;
    const binarySensors = new BinarySensors(await HaEntityRegistry.open(stateDir, logger), logger);
    await binarySensors.prune(this.ctx.config().rules);
    this.binarySensors = binarySensors;
    events.on('alertQueued', (e) => e.add(...this.publications(e)), this);
    events.on('retainedState', (e) => this.announcer.publish(e.full), this);
    events.on('configReloaded', (e) => binarySensors.prune(e.config.rules), this);
    await this.announcer.start();
  }

  /**
   * `next`, at a reload that changed the `homeassistant:` section: discovery switched off clears every config
   * announced and the image snapshots they showed; a new prefix clears the configs under the old one (the extension
   * that replaces this one announces them under the new prefix). Shutdown clears nothing: the entities go unavailable.
   */
  async stop(next?: Config): Promise<void> {
    this.ctx.events.removeListeners(this);
    await this.announcer.stop();
    const ha = next?.homeassistant;
    if (ha && (!ha.discovery || ha.prefix !== this.ha.prefix)) await this.announcer.withdraw({ images: !ha.discovery });
    await this.binarySensors?.saved();
  }

  /** The entities to announce: a device per mailbox, an event (plus image and binary_sensor) entity per rule. */
  private model(): HaModel {
    const cfg = this.ctx.config();
    return {
      mailboxes: cfg.mailboxes.map((m) => ({ id: m.id, name: m.name, host: m.host })),
      rules: cfg.rules.map((r) => ({ ...haRule(r, this.imageContentType(r.name)), binary_sensor: this.binarySensors?.haRuleField(r) })),
    };
  }

  /** Home Assistant entities read fixed topics: an event per alert, and the latest attachment image per rule. */
  private publications({ match: m, data, publications: pubs }: AgentEvents['alertQueued']): Publication[] {
    const cfg = this.ctx.config();
    const base = cfg.mqtt.base_topic;
    const alert = pubs.find((p) => p.kind === 'alert');
    const h = data.headers ?? data.full?.headers;
    const out: Publication[] = [{
      topic: eventTopic(base, m.rule.name),
      payload: Buffer.from(eventPayload({
        rule: m.rule.name, mailbox: data.mailbox, id: alert?.alertId, event: this.eventType(m),
        // Mail content: command tokens masked before the cut (the publication mask cannot see half a token).
        subject: h ? clip(h.subject, 255, maskTokens) : undefined, from: h?.from[0] ? maskTokens(h.from[0].address) : undefined,
        date: h?.date ? isoTime(h.date) : undefined,
      })),
      qos: 1, retain: false, kind: 'alert', alertId: alert?.alertId ?? '',
    }];
    const image = firstImage(pubs);
    if (image) {
      out.push({ ...image.pub, topic: imageTopic(base, m.rule.name), retain: true });
      // The image entity's content_type follows the picture actually shown; Home Assistant re-reads the retained image after the new config.
      if (image.contentType !== this.imageContentType(m.rule.name)) {
        this.imageTypes.set(m.rule.name, image.contentType);
        void this.ctx.bridge.refresh().catch((err) => this.ctx.logger.debug('discovery not refreshed', { error: err as Error }));
      }
    }
    const rule = cfg.rules.find((r) => r.name === m.rule.name);
    if (rule && this.binarySensors) {
      const bs = this.binarySensors.publications(rule, m, data, alert?.alertId ?? '', { base, prefix: this.ha.prefix, version: this.ctx.version });
      out.push(...bs.pubs);
      // Announced from now on too (after a reconnect or HA restart), and deleted when the rule goes.
      if (bs.newEntity) void this.ctx.bridge.refresh().catch(() => {});
    }
    return out;
  }

  /** The image entity's content type: the last image published for the rule, else the rule's only image type, else JPEG. */
  private imageContentType(rule: string): string {
    const seen = this.imageTypes.get(rule);
    if (seen) return seen;
    const types = this.ctx.config().rules.find((r) => r.name === rule)?.attachments?.types ?? [];
    const exact = types.filter((t) => IMAGE_TYPE.test(t.toLowerCase()));
    return exact.length === 1 && types.length === 1 ? exact[0]!.toLowerCase() : 'image/jpeg';
  }

  /** Home Assistant only accepts declared event types: a captured `event` counts when the rule lists it. */
  private eventType(m: RuleMatch): string {
    const declared = this.ctx.config().rules.find((r) => r.name === m.rule.name)?.event_types ?? [];
    const captured = m.captures.event;
    return captured !== undefined && declared.includes(captured) ? captured : 'alert';
  }
}

function haRule(r: RuleConfig, imageContentType: string): HaRule {
  const out: HaRule = { name: r.name, event_types: [...new Set(['alert', ...(r.event_types ?? [])])] };
  if (r.attachments) out.image = { content_type: imageContentType };
  return out;
}

/** A concrete image content type (no wildcard, no parameters). */
const IMAGE_TYPE = /^image\/[a-z0-9][a-z0-9.+-]*$/;

/** The first attachment of a match that is an image, with its content type (from its metadata publication, which follows it). */
function firstImage(pubs: readonly Publication[]): { pub: Publication; contentType: string } | undefined {
  for (let i = 0; i < pubs.length; i++) {
    const pub = pubs[i]!;
    const meta = pubs[i + 1];
    if (pub.kind !== 'attachment' || meta?.kind !== 'attachment-meta') continue;
    let type = '';
    try {
      type = String((JSON.parse(meta.payload.toString('utf8')) as { content_type?: unknown }).content_type ?? '').split(';')[0]!.trim().toLowerCase();
    } catch {
      continue;
    }
    if (IMAGE_TYPE.test(type)) return { pub, contentType: type };
  }
  return undefined;
}
