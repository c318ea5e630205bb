// Wiring and lifecycle of the agent: config -> rules -> mailbox runners -> outbox -> MQTT link and bridge; start, poll, reload, stop.
import os from 'node:os';
import path from 'node:path';
import { createLogger, effectiveLogLevel, type Logger } from './log.js';
import { loadConfig, type Config, type LoadedConfig, type MailboxConfig } from './config/index.js';
import { compileRules, type RuleSet } from './rules/index.js';
import { createRateLimiter } from './rules/rate-limit.js';
import { Outbox } from './alerts/outbox.js';
import { MailboxRunner, loadScheduler, type PollOutcome, type RunnerStatus, type RunnerTarget } from './mailbox/runner.js';
import { pollTargetOf } from './mailbox/target.js';
import { PollSlots, spreadPhase } from './mailbox/poll-slots.js';
import type { MailboxTokens } from './oauth/mailbox-tokens.js';
import { MqttLink } from './mqtt/link.js';
import { Bridge } from './mqtt/bridge.js';
import type { BridgeInfo, MailboxStatus } from './mqtt/types.js';
import type { Publication } from './alerts/build.js';
import type { MessageData, RuleMatch } from './rules/index.js';
import { VERSION } from './version.js';
import { makeDirs } from './state/make-dirs.js';
import { EventBus } from './events.js';
import { Extensions } from './extensions.js';
import { ServerNotesFile } from './state/server-notes.js';
import { Pop3Memory } from './pop3/index.js';

export interface AgentOptions {
  logger?: Logger;
  /** How long a poll waits inside its POP3 session for broker acknowledgements before leaving them to the outbox. */
  ackTimeoutMs?: number;
}

export interface MailboxSummary {
  mailbox: string;
  ok: boolean;
  error?: string;
  code?: string;
  messages?: number;
  new?: number;
  alerts?: number;
  deleted?: number;
  bytes?: number;
  duration_ms?: number;
  /** true when this is the result of an earlier requested poll (mqtt.min_request_interval), with `note` saying so */
  coalesced?: boolean;
  note?: string;
}

export class Agent {
  private loaded: LoadedConfig;
  private logger: Logger;
  private link!: MqttLink;
  private bridge!: Bridge;
  private outbox!: Outbox;
  private runners = new Map<string, MailboxRunner>();
  /** max_concurrent_polls: one semaphore for every poll of this agent (schedule, MQTT request, once). */
  private pollSlots: PollSlots;
  private ruleSets = new Map<string, RuleSet>();
  private rateLimiter = createRateLimiter();
  private oauthTokens: MailboxTokens | undefined;
  /** What extensions listen to (alerts queued, retained state published, config reloaded). */
  private readonly events = new EventBus();
  /** Loaded as the config asks (Home Assistant with homeassistant.discovery), started before the broker connects, replaced on reload. */
  private extensions: Extensions | undefined;
  /** mailbox id -> the last poll asked for over MQTT: when it started and its summary (see requestedPoll) */
  private requestedPolls = new Map<string, { at: number; summary: Promise<MailboxSummary> }>();
  private stopping = false;
  /** servers.json in the state directory: what the agent learned about POP3 servers, across restarts. */
  private serverNotes: ServerNotesFile | undefined;
  /** What this agent's POP3 sessions remember between polls (TLS sessions, ...), the server notes included. */
  private pop3Memory = new Pop3Memory();

  constructor(loaded: LoadedConfig, private readonly opts: AgentOptions = {}) {
    this.loaded = loaded;
    this.pollSlots = new PollSlots(loaded.config.max_concurrent_polls);
    this.logger = opts.logger ?? createLogger({ level: effectiveLogLevel(loaded.config.log_level), format: loaded.config.log_format });
  }

  get config(): Config {
    return this.loaded.config;
  }

  private get stateDir(): string {
    return path.resolve(this.loaded.dir, this.config.state_dir);
  }

  /**
   * `waitForBroker: false` (`once`): return as soon as the MQTT connection is under way instead of after the CONNACK
   * and the bridge's first publications, so that the POP3 session starts meanwhile. Alerts go to the disk outbox
   * first in any case and are sent when the link connects; broken MQTT settings still fail here, before any poll.
   */
  async start(opts: { schedule: boolean; waitForBroker?: boolean }): Promise<void> {
    for (const w of this.loaded.warnings) this.logger.warn(w);
    const cfg = this.config;
    await makeDirs(this.stateDir, 0o700);
    this.serverNotes = await ServerNotesFile.load(this.stateDir, this.logger);
    this.pop3Memory = new Pop3Memory({ notes: this.serverNotes });
    this.outbox = await Outbox.open(path.join(this.stateDir, 'outbox'), {
      maxMessages: cfg.outbox.max_messages, maxBytes: cfg.outbox.max_bytes, whenFull: cfg.outbox.when_full,
    }, this.logger.child('outbox'));
    this.link = new MqttLink(this.mqttSettings(cfg), { logger: this.logger, version: VERSION });
    this.bridge = new Bridge(this.link, this.handlers(), {
      logger: this.logger, retained: (full, reason) => this.events.emit('retainedState', { full, reason }),
    });
    this.outbox.attach(
      (e) => this.link.publish(e.topic, e.payload, { qos: e.qos, retain: e.retain, properties: e.userProperties ? { userProperties: e.userProperties } : undefined }),
      (e) => this.runners.get(e.mailbox)?.acknowledged(e) ?? Promise.resolve(),
      (e) => this.runners.get(e.mailbox)?.dropped(e) ?? Promise.resolve(),
    );
    this.link.on('connect', () => this.outbox.kick());
    this.extensions = new Extensions({
      events: this.events, link: this.link, bridge: this.bridge, config: () => this.config,
      stateDir: this.stateDir, logger: this.logger, version: VERSION,
    }, this.logger);
    await this.extensions.start(cfg);
    await this.loadOAuth(cfg);
    this.buildRunners(cfg);
    for (const r of this.runners.values()) await r.init();
    await this.link.start({ wait: opts.waitForBroker !== false });
    await this.bridge.start();
    this.outbox.kick();
    if (opts.schedule) {
      await loadScheduler();
      for (const r of this.runners.values()) r.schedule();
    }
    this.logger.info('pop2mqtt started', { version: VERSION, mailboxes: this.runners.size, rules: cfg.rules.length, broker_connected: this.link.connected });
  }

  private mqttSettings(cfg: Config) {
    const m = cfg.mqtt;
    return {
      url: m.url, base_topic: m.base_topic, client_id: m.client_id ?? `pop2mqtt-${os.hostname()}`, username: m.username, password: m.password,
      ca_file: this.resolvePath(m.ca_file), cert_file: this.resolvePath(m.cert_file), key_file: this.resolvePath(m.key_file),
      protocol_version: m.protocol_version, keepalive: m.keepalive, reconnect: m.reconnect, qos: m.qos,
    };
  }

  private resolvePath(p: string | undefined): string | undefined {
    return p === undefined ? undefined : path.resolve(this.loaded.dir, p);
  }

  private buildRunners(cfg: Config): void {
    const keep = new Set<string>();
    for (const [i, mb] of cfg.mailboxes.entries()) {
      keep.add(mb.id);
      const ruleSet = compileRules(cfg.rules, { trustedAuthservIds: cfg.trusted_authserv_ids, mailboxRuleNames: mb.rules, regexInputLimit: cfg.regex_input_limit });
      this.ruleSets.set(mb.id, ruleSet);
      const settings = {
        target: this.pollTarget(mb), schedule: mb.schedule, ruleSet,
        backoff: { minMs: mb.backoff.min, maxMs: mb.backoff.max, maxAuthAttemptsPerHour: mb.auth_backoff.max_attempts_per_hour },
        ackTimeoutMs: this.opts.ackTimeoutMs ?? 10_000,
        // One mailbox has nobody to make room for: it polls at its ticks.
        spreadMs: cfg.mailboxes.length > 1 ? cfg.poll_spread : 0, spreadPhase: spreadPhase(i),
      };
      const existing = this.runners.get(mb.id);
      if (existing) existing.update(settings);
      else {
        this.runners.set(mb.id, new MailboxRunner(settings, {
          stateDir: this.stateDir, outbox: this.outbox, baseTopic: cfg.mqtt.base_topic, rateLimiter: this.rateLimiter,
          logger: this.logger, onStatus: (id, st) => this.onStatus(id, st), slots: this.pollSlots, pop3Memory: this.pop3Memory,
          extraPublications: (m, data, pubs) => this.alertQueued(m, data, pubs),
        }));
      }
    }
    for (const id of [...this.runners.keys()]) if (!keep.has(id)) this.runners.delete(id);
  }

  /** The token managers are loaded only when a mailbox has `oauth:` settings (the rest never reads node:https). Kept across reloads. */
  private async loadOAuth(cfg: Config): Promise<void> {
    if (this.oauthTokens || !cfg.mailboxes.some((m) => m.oauth !== undefined)) return;
    const { MailboxTokens } = await import('./oauth/mailbox-tokens.js');
    this.oauthTokens = new MailboxTokens({ logger: this.logger });
  }

  private pollTarget(mb: MailboxConfig): RunnerTarget {
    return {
      ...pollTargetOf(mb, this.loaded.dir),
      // OAuth mailboxes: accessToken() and invalidateAccessToken() from a token manager kept across reloads.
      ...this.oauthTokens?.hooksFor(mb, this.stateDir),
    };
  }

  /** Publications that extensions add to an alert (listeners of alertQueued run synchronously). */
  private alertQueued(match: RuleMatch, data: MessageData, publications: Publication[]): Publication[] {
    const extra: Publication[] = [];
    void this.events.emit('alertQueued', { match, data, publications, add: (...p) => extra.push(...p) })
      .catch((err) => this.logger.warn('an extension failed on an alert', { error: (err as Error).message }));
    return extra;
  }

  private onStatus(id: string, status: RunnerStatus): void {
    void this.bridge.publishMailboxStatus(id, mailboxStatusPayload(status)).catch((err) => this.logger.debug('status not published', { error: (err as Error).message }));
  }

  /** Poll one mailbox or all, now; resolves with a summary per mailbox. */
  async pollNow(mailbox?: string, reason: 'request' | 'once' = 'request'): Promise<MailboxSummary[]> {
    return Promise.all(this.pollTargets(mailbox).map((r) => r.poll(reason).then((o) => summarize(r.id, o))));
  }

  /** A poll asked for over MQTT (bridge/request/poll, the Home Assistant buttons): coalesced per mailbox, see requestedPoll. */
  async pollRequested(mailbox?: string): Promise<MailboxSummary[]> {
    return Promise.all(this.pollTargets(mailbox).map((r) => this.requestedPoll(r)));
  }

  private pollTargets(mailbox?: string): MailboxRunner[] {
    if (!mailbox) return [...this.runners.values()];
    const r = this.runners.get(mailbox);
    if (!r) throw new Error(`unknown mailbox "${mailbox}"`);
    return [r];
  }

  /**
   * A poll asked for over MQTT: at most one per mailbox per mqtt.min_request_interval (a flood of requests must not
   * become a flood of POP3 logins). A request inside the interval gets the result of the poll that ran (or is
   * running), marked `coalesced`, with a note saying so.
   */
  private requestedPoll(r: MailboxRunner): Promise<MailboxSummary> {
    const interval = this.config.mqtt.min_request_interval;
    const last = this.requestedPolls.get(r.id);
    const now = Date.now();
    if (last && interval > 0 && now - last.at < interval) {
      const ago = Math.round((now - last.at) / 1000);
      return last.summary.then((s) => ({
        ...s, coalesced: true,
        note: `not polled again: a requested poll of this mailbox started ${ago} s ago, and requested polls are limited to one per ${Math.round(interval / 1000)} s (mqtt.min_request_interval); this is its result`,
      }));
    }
    const summary = r.poll('request').then((o) => summarize(r.id, o));
    this.requestedPolls.set(r.id, { at: now, summary });
    return summary;
  }

  /** Wait until the outbox is empty or the time is up; returns how many publications are still waiting. */
  async drainOutbox(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    this.outbox.kick();
    while (this.outbox.size > 0 && Date.now() < deadline) {
      // Returns as soon as what is queued now is acknowledged; every 50 ms at the latest, to kick the outbox again.
      const keys = this.config.mailboxes.flatMap((m) => this.outbox.pendingFor(m.id).map((e) => e.key));
      const ms = Math.max(1, Math.min(50, deadline - Date.now()));
      if (keys.length) await this.outbox.waitFor(keys, ms);
      else await new Promise((r) => setTimeout(r, ms));
      if (this.link.connected) this.outbox.kick();
    }
    return this.outbox.size;
  }

  /** Re-read the config file; an invalid config throws and the running one stays. */
  async reload(): Promise<{ mailboxes: number; rules: number }> {
    const next = await loadConfig(this.loaded.file);
    for (const w of next.warnings) this.logger.warn(w);
    const cfg = next.config;
    // Compile first so that nothing changes when the rules fail to compile.
    for (const mb of cfg.mailboxes) compileRules(cfg.rules, { trustedAuthservIds: cfg.trusted_authserv_ids, mailboxRuleNames: mb.rules, regexInputLimit: cfg.regex_input_limit });
    const removed = [...this.runners.values()].filter((r) => !cfg.mailboxes.some((m) => m.id === r.id));
    for (const r of removed) await r.stop();
    this.loaded = next;
    this.pollSlots.setLimit(cfg.max_concurrent_polls);
    const before = new Set(this.runners.keys());
    await this.loadOAuth(cfg);
    this.buildRunners(cfg);
    await loadScheduler();
    for (const [id, r] of this.runners) {
      if (!before.has(id)) {
        await r.init();
        r.schedule();
      }
    }
    // A changed `homeassistant:` section: the extension is stopped and started with it (or loaded, or unloaded).
    await this.extensions?.reload(cfg);
    await this.events.emit('configReloaded', { config: cfg });
    await this.bridge.refresh();
    this.logger.info('config reloaded', { mailboxes: cfg.mailboxes.length, rules: cfg.rules.length });
    return { mailboxes: cfg.mailboxes.length, rules: cfg.rules.length };
  }

  private handlers() {
    return {
      poll: async (mailbox?: string) => this.pollRequested(mailbox),
      reload: async () => this.reload(),
      status: () => this.statusObject(),
      testRule: async (raw: Buffer) => {
        const firstMailbox = this.config.mailboxes[0]!;
        const rs = this.ruleSets.get(firstMailbox.id) ?? compileRules(this.config.rules, { trustedAuthservIds: this.config.trusted_authserv_ids, regexInputLimit: this.config.regex_input_limit });
        const { explainMessage } = await import('./alerts/explain.js');
        return explainMessage(raw, rs, { mailbox: firstMailbox.id, baseTopic: this.config.mqtt.base_topic, maxMessageSize: firstMailbox.max_message_size });
      },
      info: (): BridgeInfo => ({
        version: VERSION,
        config_version: this.config.version,
        mailboxes: this.config.mailboxes.map((m) => ({ id: m.id, host: m.host, name: m.name, schedule: m.schedule, tls: m.tls })),
        rules: this.config.rules.map((r) => ({ name: r.name })),
      }),
    };
  }

  statusObject(): Record<string, unknown> {
    const mailboxes: Record<string, MailboxStatus> = {};
    for (const [id, r] of this.runners) mailboxes[id] = mailboxStatusPayload(r.status);
    return { version: VERSION, broker_connected: this.link.connected, outbox: { size: this.outbox.size, bytes: this.outbox.byteSize, dropped: this.outbox.dropped }, mailboxes };
  }

  /** Stop polling, abort sessions without QUIT, flush state, publish offline, disconnect: bounded so the process exits within 10 s. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all([...this.runners.values()].map((r) => r.stop(3000)));
    await this.serverNotes?.flush();
    await this.extensions?.stop();
    await this.bridge?.stop().catch(() => {});
    await this.link?.stop().catch(() => {});
    this.logger.info('pop2mqtt stopped');
  }
}

function summarize(id: string, o: PollOutcome): MailboxSummary {
  if (o.ok) {
    const r = o.result;
    return { mailbox: id, ok: true, messages: r.messages, new: r.newMessages, alerts: r.alerts, deleted: r.deleted, bytes: r.bytesIn, duration_ms: r.durationMs };
  }
  const code = (o.error as { code?: string }).code;
  return { mailbox: id, ok: false, error: o.error.message, code: code ?? o.skipped };
}

/** A runner's status as the retained `<base>/<mailbox>/status` payload (and the `status` request's answer). */
export function mailboxStatusPayload(s: RunnerStatus): MailboxStatus {
  return {
    last_poll: s.lastPoll, result: s.result, ...(s.error !== undefined ? { error: s.error } : {}),
    messages: s.messages, new: s.newMessages, alerts: s.alerts, alerts_today: s.alertsToday,
    bytes_last_poll: s.bytesLastPoll, bytes_total: s.bytesTotal, next_poll: s.nextPoll, connection_problem: s.connectionProblem,
    ...(s.outbox ? { outbox: { size: s.outbox.size, dropped: s.outbox.dropped } } : {}),
    ...(s.limitsExceeded !== undefined ? { limits_exceeded: s.limitsExceeded } : {}),
    ...(s.failedLastPoll !== undefined ? { failed_last_poll: s.failedLastPoll } : {}),
  };
}
