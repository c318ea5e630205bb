// The fault tests' tools on top of the lab: tagged alarm mail, a config with a fast schedule, a persistent MQTT subscriber, Maildir tracking.
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { makeMail } from './maildir.js';
import { USER, type Lab } from './lab.js';
import { CAMERA_MOTION_RULE } from './rules.js';
import { agentYaml } from './config-yaml.js';
import { sleep, within } from './wait.js';

/** An NVR alarm mail whose subject carries `tag`, so an alert can be traced back to the mail. */
export function alarmMail(tag: string, opts: { camera?: number; body?: string; extraHeaders?: Record<string, string> } = {}): string {
  return makeMail({
    from: 'NVR <nvr@nvr.local>',
    to: 'alice@home.example',
    subject: `ALARM: Motion ${tag} Camera ${opts.camera ?? 1}`,
    messageId: `<${tag}@nvr.local>`,
    body: opts.body ?? 'motion\r\n',
    headers: opts.extraHeaders,
  });
}

/** Mail that no rule matches: must never be alerted nor deleted. */
export function newsMail(tag: string): string {
  return makeMail({ from: 'News <news@shop.example>', to: 'alice@home.example', subject: `Deals ${tag}`, messageId: `<${tag}@shop.example>`, body: 'x'.repeat(2000) });
}

/** The tag of an alarm subject ("ALARM: Motion <tag> Camera n"). */
export function tagOf(subject: string): string | undefined {
  return /^ALARM: Motion (\S+) Camera \d+$/.exec(subject)?.[1];
}

export interface FaultConfigOptions {
  stateDir: string;
  port?: number;
  tls?: 'implicit' | 'none';
  schedule?: string;
  keep?: boolean;
  existing?: 'skip' | 'process';
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Mailbox-level YAML lines (indented 4 spaces), e.g. timeouts. */
  mailboxExtra?: string;
  /** Top-level YAML lines, e.g. an outbox section. */
  extra?: string;
  rules?: string;
  backoff?: { min: string; max: string };
  authPerHour?: number;
  reconnect?: { min: string; max: string };
}

/** A config for one mailbox `home` on the lab's Dovecot (implicit TLS by default), with a fast schedule and short backoff. */
export function faultConfig(lab: Lab, o: FaultConfigOptions): string {
  const tls = o.tls ?? 'implicit';
  const port = o.port ?? (tls === 'implicit' ? lab.dovecot.tlsPort : lab.dovecot.port);
  const b = o.backoff ?? { min: '1s', max: '2s' };
  const rc = o.reconnect ?? { min: '300ms', max: '1s' };
  return agentYaml({
    mqttUrl: lab.mosquitto.url,
    mqttExtra: `  reconnect: { min: ${rc.min}, max: ${rc.max} }\n`,
    stateDir: o.stateDir,
    extra: `log_level: ${o.logLevel ?? 'info'}\n${o.extra ?? ''}`,
    port,
    tls,
    caFile: tls === 'implicit' ? lab.dovecot.caFile : undefined,
    username: USER,
    mailboxExtra: `${tls === 'implicit' ? '' : '    allow_insecure_auth: true\n'}    schedule: "${o.schedule ?? '* * * * * *'}"
    keep: ${o.keep ?? true}
    existing: ${o.existing ?? 'process'}
    backoff: { min: ${b.min}, max: ${b.max} }
    auth_backoff: { max_attempts_per_hour: ${o.authPerHour ?? 3} }
${o.mailboxExtra ?? ''}`,
    rules: o.rules ?? CAMERA_MOTION_RULE,
  });
}

export interface AlertRecord {
  topic: string;
  id: string;
  uid: string;
  subject: string;
  tag: string | undefined;
  at: number;
}

export interface PersistentSubscriber {
  alerts: AlertRecord[];
  /** Raw messages on every subscribed topic. */
  raw: Array<{ topic: string; text: string; retain: boolean }>;
  connected(): boolean;
  waitForAlerts(pred: (a: AlertRecord[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A QoS 1 subscriber with a persistent session (clean: false, fixed client id) that reconnects by itself: with the
 * broker's persistence on, it receives every alert published while it or the broker was down, once both are back.
 */
export async function persistentSubscriber(url: string, topics: string[], clientId: string): Promise<PersistentSubscriber> {
  const client: MqttClient = mqtt.connect(url, { clientId, clean: false, protocolVersion: 4, reconnectPeriod: 200, connectTimeout: 3000 });
  const alerts: AlertRecord[] = [];
  const raw: Array<{ topic: string; text: string; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => {
    const text = payload.toString('utf8');
    raw.push({ topic, text, retain: packet.retain });
    if (!topic.startsWith('pop2mqtt/alerts/')) return;
    try {
      const j = JSON.parse(text) as { id: string; uid: string; subject: string };
      alerts.push({ topic, id: j.id, uid: j.uid, subject: j.subject, tag: tagOf(j.subject), at: Date.now() });
    } catch {
      alerts.push({ topic, id: '?', uid: '?', subject: text, tag: undefined, at: Date.now() });
    }
  });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('subscriber: no connection within 5 s')), 5000);
    client.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    alerts,
    raw,
    connected: () => client.connected,
    async waitForAlerts(pred, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(alerts)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${alerts.length} alerts: ${alerts.map((a) => a.tag).join(' ')}`);
        await sleep(50);
      }
    },
    async close() {
      await within(client.endAsync(), 2000).catch(() => {});
      client.end(true);
    },
  };
}

/** Base names (before the ":2,S" flags Dovecot appends in cur/) of the messages still in the user's Maildir. */
export async function maildirNames(lab: Lab): Promise<Set<string>> {
  const md = lab.dovecot.maildir(USER);
  const out = new Set<string>();
  for (const sub of ['new', 'cur']) for (const f of await readdir(path.join(md, sub))) out.add(f.split(':')[0]!);
  return out;
}

/** Deliver one message and return the Maildir base name it got. */
export async function deliverTracked(lab: Lab, raw: string): Promise<string> {
  const file = await lab.dovecot.deliver(USER, raw);
  return path.basename(file).split(':')[0]!;
}
