// Rules with `homeassistant.binary_sensor`: which entities to announce, and per alert the discovery config of a newly seen key (before) plus ON on its state topic.
import { matchVars, type Publication } from '../alerts/build.js';
import type { Logger } from '../log.js';
import { buildDiscovery, type DiscoveryContext } from './discovery.js';
import { binarySensorTopic } from '../mqtt/topics.js';
import type { HaRule } from './types.js';
import type { MessageData, RuleConfig, RuleMatch } from '../rules/index.js';
import { capCodePoints, renderTemplate, renderTopic } from '../rules/template.js';
import type { HaEntityRegistry, HaEntity } from './entity-registry.js';
import { parseDuration } from '../units.js';

/** The key of a rule without `per`: its one entity. */
const SINGLE = '_';
/** Longest entity name, in code points. */
const NAME_LIMIT = 100;

type BinarySensorConfig = NonNullable<NonNullable<RuleConfig['homeassistant']>['binary_sensor']>;

function offDelaySeconds(c: BinarySensorConfig): number {
  return Math.max(1, Math.ceil(parseDuration(c.off_delay) / 1000));
}

function defaultName(rule: RuleConfig, c: BinarySensorConfig, key: string): string {
  return `${c.per ? key : rule.name} ${c.device_class.replace(/_/g, ' ')}`;
}

export class BinarySensors {
  private warnedFull = new Set<string>();

  constructor(private readonly registry: HaEntityRegistry, private readonly log: Logger) {}

  /** Forget the entities of rules that are gone or have no binary_sensor any more (saved when that changed). */
  async prune(rules: readonly RuleConfig[]): Promise<void> {
    const keep = new Set(rules.filter((r) => r.homeassistant?.binary_sensor?.per).map((r) => r.name));
    if (this.registry.prune(keep)) await this.registry.save();
  }

  /** Resolves when the entity list's pending writes are done (before another extension reads it). */
  saved(): Promise<void> {
    return this.registry.saved();
  }

  /** The binary_sensor part of a rule's HaRule: the single entity, or every key seen so far. */
  haRuleField(rule: RuleConfig): HaRule['binary_sensor'] {
    const c = rule.homeassistant?.binary_sensor;
    if (!c) return undefined;
    const entities: HaEntity[] = c.per ? this.registry.entities(rule.name) : [{ key: SINGLE, name: capCodePoints(c.name ?? defaultName(rule, c, SINGLE), NAME_LIMIT) }];
    return { device_class: c.device_class, off_delay: offDelaySeconds(c), entities };
  }

  /**
   * The publications of one alert: for a key seen for the first time its discovery config (retained), then ON.
   * Both go through the outbox, which keeps order, so Home Assistant has the entity before its first state.
   * `newEntity` is true when a discovery config was added (the caller then lets the bridge know).
   */
  publications(rule: RuleConfig, m: RuleMatch, data: MessageData, alertId: string, ctx: DiscoveryContext): { pubs: Publication[]; newEntity: boolean } {
    const c = rule.homeassistant?.binary_sensor;
    if (!c) return { pubs: [], newEntity: false };
    const pubs: Publication[] = [];
    let key = SINGLE;
    let newEntity = false;
    if (c.per) {
      const vars = matchVars(m, data);
      // Sanitised and capped like a topic level: mail decides the key, never the topic prefix.
      key = renderTopic(c.per, vars);
      const entity = { key, name: capCodePoints(c.name ? renderTemplate(c.name, vars) : defaultName(rule, c, key), NAME_LIMIT) };
      const added = this.registry.add(rule.name, entity, c.max_entities);
      if (added === 'full') {
        if (!this.warnedFull.has(rule.name)) {
          this.warnedFull.add(rule.name);
          this.log.warn('binary_sensor limit reached: no entity for new values', { rule: rule.name, max_entities: c.max_entities, value: key });
        }
        return { pubs, newEntity };
      }
      if (added === 'new') {
        void this.registry.save();
        const only: HaRule = { name: rule.name, binary_sensor: { device_class: c.device_class, off_delay: offDelaySeconds(c), entities: [entity] } };
        const config = buildDiscovery({ mailboxes: [], rules: [only] }, ctx).messages.find((d) => d.component === 'binary_sensor');
        if (config) {
          pubs.push({ topic: config.topic, payload: Buffer.from(JSON.stringify(config.payload)), qos: 1, retain: true, kind: 'alert', alertId });
          newEntity = true;
        }
      }
    }
    pubs.push({ topic: binarySensorTopic(ctx.base, rule.name, key), payload: Buffer.from('ON'), qos: 1, retain: false, kind: 'alert', alertId });
    return { pubs, newEntity };
  }
}
