// The agent's face on MQTT (Zigbee2MQTT style): availability, bridge info, mailbox status, request/response commands.
import { errorText, silentLogger, type Logger } from '../log.js';
import { withTimeout } from '../with-timeout.js';
import { BRIDGE_STATE_ONLINE, type MessageInfo, type MqttLink } from './link.js';
import { oversizeOf } from './oversize-filter.js';
import { isBridgeCommand, makeResponse, MAX_REQUEST_BYTES, parseRequest, tooLargeError, type BridgeCommand, type BridgeResponse, type ParsedRequest } from './requests.js';
import { bridgeInfoTopic, bridgeStateTopic, mailboxStatusTopic, requestTopic, responseTopic } from './topics.js';
import type { BridgeHandlers, MailboxStatus } from './types.js';

export type { BridgeHandlers, BridgeInfo, MailboxStatus } from './types.js';

export interface BridgeOptions {
  logger?: Logger;
  /**
   * Runs after the bridge published its retained state, inside the same run (the agent emits `retainedState` to its
   * extensions): `full` after a (re)connect or republish(), not full after refresh(). A failure is logged like the
   * bridge's own and repeated at the next reconnect.
   */
  retained?: (full: boolean, reason: string) => Promise<void>;
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
  private readonly retained: BridgeOptions['retained'];
  private readonly maxQueued: number;
  private readonly requestTimeoutMs: number;
  private readonly base: string;

  private readonly statuses = new Map<string, MailboxStatus>();
  private readonly queues = new Map<string, CommandQueue>();
  private started = false;
  private stopped = false;
  private republishRunning: Promise<void> | null = null;
  private republishAgain = false;

  private readonly onConnect = () => { void this.republish('reconnect'); };
  private readonly onRequest = (topic: string, payload: Buffer, info: MessageInfo) => this.handleRequest(topic, payload, info);

  constructor(link: MqttLink, handlers: BridgeHandlers, opts: BridgeOptions) {
    this.link = link;
    this.handlers = handlers;
    this.log = (opts.logger ?? silentLogger).child('bridge');
    this.retained = opts.retained;
    this.maxQueued = opts.maxQueuedRequests ?? 4;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 300_000;
    this.base = link.baseTopic;
  }

  /**
   * Subscribes to `bridge/request/+`, publishes online state, info and statuses (then the `retained` hook) now if
   * connected, and again after every reconnect.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.link.on('connect', this.onConnect);
    await this.link.subscribe(requestTopic(this.base, '+'), this.onRequest);
    if (this.link.connected) await this.republish('start');
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

  /** After a config reload: republishes info, deletes statuses no longer in the config, then runs the `retained` hook (not full). */
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
      await this.retained?.(false, 'refresh');
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
    for (const q of this.queues.values()) q.waiting.length = 0;
  }

  // ------------------------------------------------------------- republishing

  /** Runs one full republish; concurrent calls coalesce into one more run after the current one. */
  republish(reason: string): Promise<void> {
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
      await this.retained?.(true, reason);
    } catch (err) {
      this.log.warn('republishing retained state failed; will retry on reconnect', { reason, error: errorText(err) });
    }
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
   * Serialises what the bridge publishes. No blanket masking here: info and key names are ours
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
