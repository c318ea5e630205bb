// The agent's typed events and the extension contract (Zigbee2MQTT's controller + extensions): the agent emits, extensions such as Home Assistant listen.
import type { Publication } from './alerts/build.js';
import type { Config } from './config/index.js';
import type { Logger } from './log.js';
import type { MqttLink } from './mqtt/link.js';
import type { MessageData, RuleMatch } from './rules/index.js';

export interface AgentEvents {
  /**
   * A matched rule's publications are about to be queued, inside the poll. Listeners run synchronously and may `add`
   * publications of their own: they go into the outbox after the alert's, in order, and the mail is deleted only once
   * all of them are acknowledged.
   */
  alertQueued: { match: RuleMatch; data: MessageData; publications: readonly Publication[]; add(...pubs: Publication[]): void };
  /**
   * The bridge has published its own retained state (online, info, statuses): after every (re)connect and when asked
   * to republish (`full`: publish every retained message again), or after a config reload (only what changed).
   */
  retainedState: { full: boolean; reason: string };
  /** A new config is in place (runners rebuilt); emitted before the bridge refreshes its retained state. */
  configReloaded: { config: Config };
}

type Listener<K extends keyof AgentEvents> = (event: AgentEvents[K]) => void | Promise<void>;

/**
 * Typed events with owners: an extension subscribes with itself as owner and `removeListeners(itself)` on stop.
 * `emit` calls the listeners in the order they subscribed and awaits them; an error propagates to the emitter.
 */
export class EventBus {
  private readonly listeners = new Map<keyof AgentEvents, Array<{ owner: object; fn: Listener<never> }>>();

  on<K extends keyof AgentEvents>(event: K, fn: Listener<K>, owner: object): void {
    const list = this.listeners.get(event) ?? [];
    list.push({ owner, fn: fn as Listener<never> });
    this.listeners.set(event, list);
  }

  removeListeners(owner: object): void {
    for (const [event, list] of this.listeners) this.listeners.set(event, list.filter((l) => l.owner !== owner));
  }

  /** Runs every listener; those that return promises are awaited together. Synchronous listeners have run on return. */
  emit<K extends keyof AgentEvents>(event: K, payload: AgentEvents[K]): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const { fn } of this.listeners.get(event) ?? []) {
      const r = (fn as Listener<K>)(payload);
      if (r) pending.push(r);
    }
    return pending.length ? Promise.all(pending).then(() => {}) : Promise.resolve();
  }
}

/** What an extension gets from the agent (the controller). */
export interface ExtensionContext {
  events: EventBus;
  link: MqttLink;
  /** The bridge's retained state: republish everything (emits retainedState, full) or refresh after a change (not full). */
  bridge: { republish(reason: string): Promise<void>; refresh(): Promise<void> };
  /** The config in force (it changes on reload). */
  config(): Config;
  stateDir: string;
  logger: Logger;
  version: string;
}

/**
 * A pluggable part of the agent: loaded only when its config asks for it, started before the broker connects, and
 * stopped and started again by a reload that changes its config section.
 */
export interface Extension {
  start(): Promise<void>;
  /**
   * Unsubscribes and stops listening to events. `next`: the config replacing this extension's at a reload (the
   * extension then removes from the broker what the new settings no longer announce); none at shutdown.
   */
  stop(next?: Config): Promise<void>;
}
