// The saved UID state of one mailbox: which messages are done, which alerts were acknowledged, what must still be deleted.
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { removeStaleTemps, writeFileAtomic } from './atomic-file.js';
import type { Logger } from '../log.js';
import { isoTime } from '../iso-time.js';

const FORMAT = 'pop2mqtt-state';
const VERSION = 1;

/** What the file holds, beyond its checksum line. */
export interface MailboxStateData {
  mailbox: string;
  /** UIDs on the server at the last sync, in server order (message 1 first): the basis for incremental UIDL. */
  serverUids: string[];
  /** STAT seen at the end of the last successful poll. */
  stat: { count: number; size: number } | null;
  /** UIDs fully handled: every alert acknowledged, or no rule matched. */
  done: string[];
  /** Alert ids acknowledged by the broker, per UID not yet done (so a restart never republishes them). */
  acked: Record<string, string[]>;
  /** UIDs whose alerts were acknowledged and whose policy says delete, not yet DELEd in a committed session. */
  deletePending: string[];
  /** Per-UID count of failed attempts (unparseable headers, fetch errors); kept for a person after too many. */
  failures: Record<string, number>;
  /** Total bytes received from this server over the agent's life. */
  bytesTotal: number;
  /** Times (ms) of recent failed logins, so the per-hour cap survives restarts. */
  authFailures: number[];
  /** The replay memory of action rules: one record per (rule, Message-ID) acted on, oldest first. */
  commands: CommandRecord[];
}

/** A command mail an action rule acted on. */
export interface CommandRecord {
  /** A hash of rule name and Message-ID (fixed size, whatever the mail's header holds). */
  key: string;
  /** The message that acted, while it is not done: a retry of that same message may act; any other copy may not. */
  uid: string;
  /** When it acted (ms). */
  at: number;
  /** When the record is forgotten (at + replay_window). */
  forgetAt: number;
  /** From when the record may be evicted to make room: the Date check (max_age + max_future) refuses any copy by then. */
  evictableAt: number;
}

/** Most command records kept per mailbox: the state file stays small (about 150 KB at most). */
export const MAX_COMMAND_RECORDS = 1000;

export type CommandClaim = 'claimed' | 'again' | 'replay' | 'full';

export type LoadOutcome = 'new' | 'loaded' | 'recovered';

/** The state as others see it: read-only, so every change goes through a method (which also marks it for saving). */
export type MailboxStateView = DeepReadonly<MailboxStateData>;
type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

export class MailboxState {
  readonly file: string;
  private raw: MailboxStateData;
  private doneSet: Set<string>;
  private dirty = false;

  private constructor(file: string, data: MailboxStateData) {
    this.file = file;
    this.raw = data;
    this.doneSet = new Set(data.done);
  }

  get data(): MailboxStateView {
    return this.raw;
  }

  static fileFor(stateDir: string, mailbox: string): string {
    return path.join(stateDir, `${mailbox}.state.json`);
  }

  static empty(mailbox: string): MailboxStateData {
    return { mailbox, serverUids: [], stat: null, done: [], acked: {}, deletePending: [], failures: {}, bytesTotal: 0, authFailures: [], commands: [] };
  }

  /**
   * Loads the state. A missing file is a first run ('new'). A truncated, corrupt or foreign file is kept aside as
   * `<file>.corrupt-<time>` and the state starts empty ('recovered'), so the caller applies its `existing:` policy.
   */
  static async load(stateDir: string, mailbox: string, logger: Logger): Promise<{ state: MailboxState; outcome: LoadOutcome }> {
    await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
    const file = MailboxState.fileFor(stateDir, mailbox);
    await removeStaleTemps(file);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: new MailboxState(file, MailboxState.empty(mailbox)), outcome: 'new' };
      throw err;
    }
    const parsed = parseStateText(text, mailbox);
    if (typeof parsed === 'string') {
      const aside = `${file}.corrupt-${isoTime().replace(/[:.]/g, '-')}`;
      await fs.rename(file, aside);
      logger.error(`STATE FILE CORRUPT (${parsed}); kept aside and rebuilding from the server with the 'existing' policy`, { file, kept: aside });
      return { state: new MailboxState(file, MailboxState.empty(mailbox)), outcome: 'recovered' };
    }
    return { state: new MailboxState(file, parsed), outcome: 'loaded' };
  }

  isDone(uid: string): boolean {
    return this.doneSet.has(uid);
  }

  ackedAlerts(uid: string): ReadonlySet<string> {
    return new Set(this.raw.acked[uid] ?? []);
  }

  recordAck(uid: string, alertId: string): void {
    const list = (this.raw.acked[uid] ??= []);
    if (!list.includes(alertId)) list.push(alertId);
    this.dirty = true;
  }

  markDone(uid: string, opts: { deleteOnServer?: boolean } = {}): void {
    if (!this.doneSet.has(uid)) {
      this.doneSet.add(uid);
      this.raw.done.push(uid);
    }
    this.releaseCommandUids([uid]);
    delete this.raw.acked[uid];
    delete this.raw.failures[uid];
    if (opts.deleteOnServer && !this.raw.deletePending.includes(uid)) this.raw.deletePending.push(uid);
    this.dirty = true;
  }

  /** One more failed attempt at `uid`; `atLeast` raises the count further (a message parked at once). Returns the count. */
  recordFailure(uid: string, atLeast = 0): number {
    const n = Math.max((this.raw.failures[uid] ?? 0) + 1, atLeast);
    this.raw.failures[uid] = n;
    this.dirty = true;
    return n;
  }

  /** The times (ms) of recent failed logins, as the backoff keeps them; the caller saves. */
  setAuthFailures(times: readonly number[]): void {
    this.raw.authFailures = [...times];
    this.dirty = true;
  }

  /** UIDs DELEd in a session that reached QUIT: the server has removed them. */
  confirmDeleted(uids: Iterable<string>): void {
    const gone = new Set(uids);
    this.releaseCommandUids(gone);
    this.raw.deletePending = this.raw.deletePending.filter((u) => !gone.has(u));
    this.raw.serverUids = this.raw.serverUids.filter((u) => !gone.has(u));
    this.raw.done = this.raw.done.filter((u) => !gone.has(u));
    this.doneSet = new Set(this.raw.done);
    this.raw.stat = null; // octets unknown after deletions: the next poll syncs without the STAT short-circuit
    this.dirty = true;
  }

  /**
   * Claim the right to act on a command mail: 'claimed' (first time; recorded), 'again' (the same message, not yet
   * done, e.g. after a failed enqueue), 'replay' (another message, or this one after it was done, with the same key
   * acted already) or 'full' (MAX_COMMAND_RECORDS records none of which may go yet: refuse rather than forget).
   * Expired records are dropped first. The caller saves the state before it publishes.
   */
  claimCommand(key: string, uid: string, now: number, windows: { forgetAfterMs: number; evictableAfterMs: number }): CommandClaim {
    const list = this.raw.commands;
    const live = list.filter((c) => c.forgetAt > now);
    if (live.length !== list.length) {
      this.raw.commands = live;
      this.dirty = true;
    }
    const seen = this.raw.commands.find((c) => c.key === key);
    if (seen) return seen.uid !== '' && seen.uid === uid ? 'again' : 'replay';
    if (this.raw.commands.length >= MAX_COMMAND_RECORDS) {
      const i = this.raw.commands.findIndex((c) => c.evictableAt <= now);
      if (i < 0) return 'full';
      this.raw.commands.splice(i, 1);
    }
    this.raw.commands.push({ key, uid, at: now, forgetAt: now + windows.forgetAfterMs, evictableAt: now + windows.evictableAfterMs });
    this.dirty = true;
    return 'claimed';
  }

  /** A message is done or gone: its commands can no longer act again through it (a later copy with its UID is a replay). */
  private releaseCommandUids(uids: Iterable<string>): void {
    if (!this.raw.commands.length) return;
    const set = uids instanceof Set ? (uids as Set<string>) : new Set(uids);
    for (const c of this.raw.commands) if (c.uid !== '' && set.has(c.uid)) c.uid = '';
  }

  /** Record the server's UID list; forget everything about UIDs no longer on the server. */
  syncServer(serverUids: string[], stat: { count: number; size: number }): void {
    const present = new Set(serverUids);
    this.raw.serverUids = serverUids;
    this.raw.stat = stat;
    this.raw.done = this.raw.done.filter((u) => present.has(u));
    this.doneSet = new Set(this.raw.done);
    for (const key of ['acked', 'failures'] as const) {
      for (const uid of Object.keys(this.raw[key])) if (!present.has(uid)) delete this.raw[key][uid];
    }
    this.raw.deletePending = this.raw.deletePending.filter((u) => present.has(u));
    this.dirty = true;
  }

  /** The byte counter alone is saved at most every 10 minutes: an idle poll must not rewrite an SD card each time. */
  addBytes(n: number): void {
    this.raw.bytesTotal += n;
    if (Date.now() - this.lastSaved > 600_000) this.dirty = true;
  }

  private lastSaved = Date.now();

  get isDirty(): boolean {
    return this.dirty;
  }

  async save(): Promise<void> {
    const body = JSON.stringify(this.raw);
    this.dirty = false;
    const sha256 = createHash('sha256').update(body).digest('hex');
    const header = JSON.stringify({ format: FORMAT, version: VERSION, sha256, bytes: Buffer.byteLength(body) });
    try {
      await writeFileAtomic(this.file, `${header}\n${body}\n`);
      this.lastSaved = Date.now();
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  private saving: Promise<void> | null = null;

  /** Save if anything changed; concurrent callers share one write, and a change made during a write causes another. */
  async flush(): Promise<void> {
    while (this.dirty) {
      if (this.saving) {
        await this.saving;
        continue;
      }
      this.saving = this.save().finally(() => {
        this.saving = null;
      });
      await this.saving;
    }
  }
}

/** Returns the data, or a string saying why the text is not a valid state file. */
export function parseStateText(text: string, mailbox: string): MailboxStateData | string {
  const nl = text.indexOf('\n');
  if (nl < 0) return 'no header line (truncated?)';
  let header: { format?: unknown; version?: unknown; sha256?: unknown };
  try {
    header = JSON.parse(text.slice(0, nl));
  } catch {
    return 'header is not JSON';
  }
  if (header.format !== FORMAT) return 'not a pop2mqtt state file';
  if (header.version !== VERSION) return `unsupported state version ${String(header.version)}`;
  const body = text.slice(nl + 1).replace(/\n$/, '');
  const sha = createHash('sha256').update(body).digest('hex');
  if (sha !== header.sha256) return 'checksum mismatch (truncated or modified)';
  let data: MailboxStateData;
  try {
    data = JSON.parse(body) as MailboxStateData;
  } catch {
    return 'body is not JSON';
  }
  if (data.mailbox !== mailbox) return `state belongs to mailbox ${JSON.stringify(data.mailbox)}`;
  const base = MailboxState.empty(mailbox);
  return { ...base, ...data };
}
