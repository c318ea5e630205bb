// The disk-backed outbox: every publication is on disk before it is sent and leaves only after the broker acknowledged it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, fsyncDir } from '../state/atomic-file.js';
import type { Logger } from '../log.js';

export interface OutboxItem {
  /** Unique per publication and stable across polls: `<alertId>#<index>`; a second enqueue of the same key is ignored. */
  key: string;
  mailbox: string;
  uid: string;
  /** Every key published for this message: when all are acknowledged, the message is done. */
  messageKeys: string[];
  /** Delete the message on the server once all its publications are acknowledged. */
  deleteAfter: boolean;
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  userProperties?: Record<string, string>;
  payload: Buffer;
}

export interface OutboxEntry extends OutboxItem {
  seq: number;
  file: string;
}

export interface OutboxLimits {
  maxMessages: number;
  maxBytes: number;
  whenFull: 'stop_polling' | 'drop_oldest';
}

export type Sender = (entry: OutboxEntry) => Promise<void>;
/** Called after the broker acknowledged an entry and before its file is removed (record it in the state first). */
export type AckHandler = (entry: OutboxEntry) => Promise<void>;
/** Called for entries dropped under the drop_oldest policy. */
export type DropHandler = (entry: OutboxEntry) => Promise<void>;

const WINDOW = 16;
/** Entry files written at once by one enqueue (their fsyncs overlap; each write holds two descriptors). */
const WRITE_TOGETHER = 32;

export class Outbox {
  private entries: OutboxEntry[] = [];
  private byKey = new Map<string, OutboxEntry>();
  private seq = 0;
  private bytes = 0;
  private sending = false;
  private waiters = new Map<string, Array<() => void>>();
  private sender: Sender | null = null;
  private onAck: AckHandler = async () => {};
  private onDrop: DropHandler = async () => {};
  private kickAgain = false;
  /** Entries the broker acknowledged whose acknowledgement is being recorded: not sent again meanwhile. */
  private readonly recording = new Set<OutboxEntry>();
  /** Wakes a drain that waits for records under way, when entries are queued. */
  private wake: (() => void) | undefined;
  /** Entries of enqueue() calls whose files are being written (not in `entries` yet). */
  private writing = { messages: 0, bytes: 0 };
  dropped = 0;

  private constructor(readonly dir: string, readonly limits: OutboxLimits, private readonly logger: Logger) {}

  static async open(dir: string, limits: OutboxLimits, logger: Logger): Promise<Outbox> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const box = new Outbox(dir, limits, logger);
    const names = (await fs.readdir(dir)).filter((n) => /^\d{12}\.msg$/.test(n)).sort();
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        const entry = decodeEntry(await fs.readFile(file), file);
        if (entry.seq !== Number(name.slice(0, 12))) throw new Error(`seq ${entry.seq} does not match the file name`);
        if (box.byKey.has(entry.key)) throw new Error('a second entry with the same key');
        box.entries.push(entry);
        box.byKey.set(entry.key, entry);
        box.bytes += entry.payload.length;
        box.seq = Math.max(box.seq, entry.seq);
      } catch (err) {
        const aside = `${file}.corrupt`;
        await fs.rename(file, aside).catch(() => {});
        logger.error('outbox entry unreadable; kept aside', { file: aside, error: (err as Error).message });
      }
    }
    for (const n of (await fs.readdir(dir)).filter((x) => x.endsWith('.tmp'))) await fs.unlink(path.join(dir, n)).catch(() => {});
    if (box.entries.length) logger.info('outbox restored', { entries: box.entries.length, bytes: box.bytes });
    return box;
  }

  get size(): number {
    return this.entries.length;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** True when another poll may add alerts: always under drop_oldest, otherwise while below both limits. */
  hasRoom(queued: { messages: number; bytes: number } = { messages: 0, bytes: 0 }): boolean {
    if (this.limits.whenFull === 'drop_oldest') return true;
    // Entries still being written count, and those a poll has `queued` for writing: a poll may ask while its last
    // batches' files are on their way to disk.
    const messages = this.entries.length + this.writing.messages + queued.messages;
    return messages < this.limits.maxMessages && this.bytes + this.writing.bytes + queued.bytes < this.limits.maxBytes;
  }

  pendingFor(mailbox: string): OutboxEntry[] {
    return this.entries.filter((e) => e.mailbox === mailbox);
  }

  attach(sender: Sender, onAck: AckHandler, onDrop: DropHandler): void {
    this.sender = sender;
    this.onAck = onAck;
    this.onDrop = onDrop;
  }

  /** Persist items (fsync each) in order; keys already queued are skipped. Returns the keys now pending. */
  async enqueue(items: OutboxItem[]): Promise<void> {
    if (this.limits.whenFull !== 'drop_oldest') return this.enqueueTogether(items);
    for (const item of items) {
      if (this.byKey.has(item.key)) continue;
      await this.makeRoom(item.payload.length);
      const seq = ++this.seq;
      const file = path.join(this.dir, `${String(seq).padStart(12, '0')}.msg`);
      const entry: OutboxEntry = { ...item, seq, file };
      await writeFileAtomic(file, encodeEntry(entry));
      this.entries.push(entry);
      this.byKey.set(entry.key, entry);
      this.bytes += entry.payload.length;
    }
    this.kick();
  }

  /**
   * Without drop_oldest nothing has to make room first, so the files are written at once (their fsyncs overlap)
   * and added in sequence order; a file that could not be written is left out and its error thrown, as the serial
   * path would (the caller's message is then not done and is polled again).
   */
  private async enqueueTogether(items: OutboxItem[]): Promise<void> {
    const seen = new Set<string>();
    const fresh = items.filter((item) => !this.byKey.has(item.key) && !seen.has(item.key) && seen.add(item.key));
    const entries: OutboxEntry[] = fresh.map((item) => {
      const seq = ++this.seq;
      return { ...item, seq, file: path.join(this.dir, `${String(seq).padStart(12, '0')}.msg`) };
    });
    // At most WRITE_TOGETHER files open at once; the directory is synced once for all of them (their renames are
    // durable then), before any of them is published.
    const written: PromiseSettledResult<void>[] = [];
    const size = { messages: entries.length, bytes: entries.reduce((n, e) => n + e.payload.length, 0) };
    this.writing.messages += size.messages;
    this.writing.bytes += size.bytes;
    try {
      for (let i = 0; i < entries.length; i += WRITE_TOGETHER) {
        written.push(...await Promise.allSettled(entries.slice(i, i + WRITE_TOGETHER).map((e) => writeFileAtomic(e.file, encodeEntry(e), 0o600, { syncDir: false }))));
      }
      if (entries.length) await fsyncDir(this.dir);
    } finally {
      this.writing.messages -= size.messages;
      this.writing.bytes -= size.bytes;
    }
    let error: unknown;
    entries.forEach((entry, i) => {
      const w = written[i]!;
      if (w.status === 'rejected') {
        error ??= w.reason;
        return;
      }
      this.entries.push(entry);
      this.byKey.set(entry.key, entry);
      this.bytes += entry.payload.length;
    });
    if (entries.length) this.kick();
    if (error !== undefined) throw error;
  }

  private async makeRoom(incoming: number): Promise<void> {
    if (this.limits.whenFull !== 'drop_oldest') return;
    while (this.entries.length > 0 && (this.entries.length + 1 > this.limits.maxMessages || this.bytes + incoming > this.limits.maxBytes)) {
      const oldest = this.entries[0]!;
      this.remove(oldest);
      await fs.unlink(oldest.file).catch(() => {});
      this.dropped++;
      this.logger.warn('outbox full: dropped the oldest alert', { mailbox: oldest.mailbox, uid: oldest.uid, topic: oldest.topic, dropped_total: this.dropped });
      await this.onDrop(oldest);
      this.release(oldest.key);
    }
  }

  /** Resolves when every key is acknowledged (or dropped), or after timeoutMs with the keys still pending. */
  async waitFor(keys: string[], timeoutMs: number, signal?: AbortSignal): Promise<string[]> {
    const pending = keys.filter((k) => this.byKey.has(k));
    if (!pending.length) return [];
    await new Promise<void>((resolve) => {
      let left = pending.length;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      for (const k of pending) {
        const list = this.waiters.get(k) ?? [];
        list.push(() => {
          if (--left === 0) done();
        });
        this.waiters.set(k, list);
      }
    });
    return keys.filter((k) => this.byKey.has(k));
  }

  /** Start (or continue) sending in order with a bounded window; stops at the first failure until kicked again. */
  kick(): void {
    if (!this.sender) return;
    if (this.sending) {
      this.kickAgain = true;
      this.wake?.();
      return;
    }
    this.sending = true;
    void this.drain().finally(() => {
      this.sending = false;
      if (this.kickAgain) {
        this.kickAgain = false;
        if (this.entries.length) this.kick();
      }
    });
  }

  /**
   * Send in order, WINDOW publications at a time. A window's acknowledgements are recorded (state saved, then its
   * files removed and its waiters released) while the next window is sent: the state file's fsync no longer holds
   * up the broker. Stops at the first failed send or record (after the records under way), until kicked again.
   */
  private async drain(): Promise<void> {
    const sender = this.sender!;
    const run = { recordFailed: false };
    let recorded: Promise<void> = Promise.resolve();
    for (;;) {
      const batch: OutboxEntry[] = [];
      if (!run.recordFailed) {
        for (const e of this.entries) {
          if (batch.length >= WINDOW) break;
          if (!this.recording.has(e)) batch.push(e);
        }
      }
      if (!batch.length) {
        if (run.recordFailed || !this.recording.size) {
          await recorded;
          if (run.recordFailed) break;
          if (this.entries.some((e) => !this.recording.has(e))) continue; // queued while the last window was recorded
          return;
        }
        // Records under way: go on when they are done or when entries are queued (kick), whichever comes first.
        await Promise.race([recorded, new Promise<void>((resolve) => (this.wake = resolve))]);
        this.wake = undefined;
        continue;
      }
      const results = await Promise.allSettled(batch.map((e) => sender(e)));
      const failed = results.some((r) => r.status === 'rejected');
      const acked = batch.filter((e, i) => results[i]!.status === 'fulfilled' && this.byKey.has(e.key)); // not dropped meanwhile
      for (const e of acked) this.recording.add(e);
      recorded = recorded.then(() => this.record(acked, run)).catch((err: unknown) => {
        run.recordFailed = true; // not expected (record() settles every handler), but the drain must stop, not crash
        this.logger.error('recording acknowledged alerts failed; they stay in the outbox', { error: (err as Error).message });
      });
      if (failed) {
        await recorded;
        break;
      }
    }
    await fsyncDir(this.dir);
  }

  /**
   * The acknowledgements of one window, recorded together: the handlers run at once, so a mailbox's state file is
   * written once or twice per window (MailboxState.flush coalesces), not once per alert. An entry file is removed
   * only after its own acknowledgement is on disk; the window's files are removed together, then its waiters released.
   */
  private async record(acked: OutboxEntry[], run: { recordFailed: boolean }): Promise<void> {
    try {
      const recorded = await Promise.allSettled(acked.map((e) => this.onAck(e)));
      const done: OutboxEntry[] = [];
      for (let i = 0; i < acked.length; i++) {
        const entry = acked[i]!;
        const r = recorded[i]!;
        if (r.status === 'rejected') {
          this.logger.error('recording an acknowledged alert failed; it stays in the outbox', { error: (r.reason as Error).message });
          run.recordFailed = true;
          continue;
        }
        if (!this.byKey.has(entry.key)) continue;
        this.remove(entry);
        done.push(entry);
      }
      await Promise.all(done.map((e) => fs.unlink(e.file).catch(() => {})));
      for (const e of done) this.release(e.key);
    } finally {
      for (const e of acked) this.recording.delete(e);
    }
  }

  private remove(entry: OutboxEntry): void {
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
    this.byKey.delete(entry.key);
    this.bytes -= entry.payload.length;
  }

  private release(key: string): void {
    const list = this.waiters.get(key);
    this.waiters.delete(key);
    for (const fn of list ?? []) fn();
  }
}

/** The entry file in two parts, a JSON line and the payload, written without copying the payload (snapshots are MBs). */
function encodeEntry(e: OutboxEntry): Buffer[] {
  const meta = {
    v: 1, seq: e.seq, key: e.key, mailbox: e.mailbox, uid: e.uid, messageKeys: e.messageKeys, deleteAfter: e.deleteAfter,
    topic: e.topic, qos: e.qos, retain: e.retain, userProperties: e.userProperties, length: e.payload.length,
  };
  return [Buffer.from(JSON.stringify(meta) + '\n'), e.payload];
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** What is wrong with an entry's JSON header line, or null: every field is checked before the entry is trusted. */
function entryProblem(meta: Record<string, unknown>, payloadLength: number): string | null {
  if (meta.v !== 1) return `unknown version ${JSON.stringify(meta.v)}`;
  if (!Number.isSafeInteger(meta.seq) || (meta.seq as number) < 1 || (meta.seq as number) > 999_999_999_999) return `seq is not a sequence number: ${JSON.stringify(meta.seq)}`;
  for (const k of ['key', 'mailbox', 'uid', 'topic'] as const) if (!isString(meta[k]) || meta[k] === '') return `${k} is not a non-empty string`;
  if (!Array.isArray(meta.messageKeys) || !meta.messageKeys.every(isString)) return 'messageKeys is not a list of keys';
  if (typeof meta.deleteAfter !== 'boolean' || typeof meta.retain !== 'boolean') return 'deleteAfter or retain is not a boolean';
  if (meta.qos !== 0 && meta.qos !== 1 && meta.qos !== 2) return `qos is not 0, 1 or 2: ${JSON.stringify(meta.qos)}`;
  if (/[+#\u0000]/.test(meta.topic as string)) return 'topic holds a wildcard or NUL';
  const props = meta.userProperties;
  if (props !== undefined && (props === null || typeof props !== 'object' || Array.isArray(props) || !Object.values(props).every(isString))) {
    return 'userProperties is not a map of strings';
  }
  if (meta.length !== payloadLength) return `payload is ${payloadLength} bytes, header says ${JSON.stringify(meta.length)} (truncated?)`;
  return null;
}

function decodeEntry(buf: Buffer, file: string): OutboxEntry {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw new Error('no header line');
  const meta: unknown = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new Error('header line is not a JSON object');
  const m = meta as Record<string, unknown>;
  const payload = buf.subarray(nl + 1);
  const problem = entryProblem(m, payload.length);
  if (problem) throw new Error(problem);
  return {
    seq: m.seq as number, file, key: m.key as string, mailbox: m.mailbox as string, uid: m.uid as string, messageKeys: m.messageKeys as string[],
    deleteAfter: m.deleteAfter as boolean, topic: m.topic as string, qos: m.qos as 0 | 1 | 2, retain: m.retain as boolean,
    ...(m.userProperties !== undefined ? { userProperties: m.userProperties as Record<string, string> } : {}), payload: Buffer.from(payload),
  };
}
