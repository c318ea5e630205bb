// What the agent learned about each POP3 server (keyed by host, port and certificate), kept in `servers.json` in the state directory so it outlives TLS resumption chains and restarts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { removeStaleTemps, writeFileAtomic } from './atomic-file.js';
import { MECHANISM_CLASS, type ConcreteMechanism, type ServerFacts, type ServerNotebook } from '../pop3/index.js';
import type { Logger } from '../log.js';

const FORMAT = 'pop2mqtt-servers';
const VERSION = 1;
/** Servers kept at most (least recently noted dropped first). */
const MAX_SERVERS = 64;
/** A note older than this is forgotten: a server may have been fixed since. */
const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

interface Entry extends ServerFacts {
  /** When this entry was last noted (ms since the epoch). */
  at: number;
}

const MECHANISMS = new Set(Object.keys(MECHANISM_CLASS));

/** Only well-formed facts survive loading; anything else in the file is ignored, never trusted. */
function cleanEntry(v: unknown, now: number): Entry | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const at = typeof o.at === 'number' && Number.isFinite(o.at) ? o.at : NaN;
  if (!(at > now - MAX_AGE_MS && at <= now + 60_000)) return null;
  const refused = Array.isArray(o.refusedMechanisms)
    ? [...new Set(o.refusedMechanisms.filter((m): m is ConcreteMechanism => typeof m === 'string' && MECHANISMS.has(m)))]
    : [];
  return refused.length ? { at, refusedMechanisms: refused } : null;
}

/** One per state directory in a process: every mailbox of the agent shares it, and writes to the file are serialised. */
export class ServerNotesFile implements ServerNotebook {
  private static readonly open = new Map<string, Promise<ServerNotesFile>>();
  private readonly entries = new Map<string, Entry>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(readonly file: string, private readonly logger: Logger) {}

  static fileFor(stateDir: string): string {
    return path.join(stateDir, 'servers.json');
  }

  /** The notebook of this state directory (loaded once per process). A missing or unreadable file starts empty. */
  static load(stateDir: string, logger: Logger): Promise<ServerNotesFile> {
    const file = path.resolve(ServerNotesFile.fileFor(stateDir));
    let p = ServerNotesFile.open.get(file);
    if (!p) {
      p = ServerNotesFile.read(file, logger);
      ServerNotesFile.open.set(file, p);
      p.catch(() => ServerNotesFile.open.delete(file));
    }
    return p;
  }

  private static async read(file: string, logger: Logger): Promise<ServerNotesFile> {
    const notes = new ServerNotesFile(file, logger);
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await removeStaleTemps(file);
    let text: string | null = null;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn('server notes unreadable; starting empty', { file, error: (err as Error).message });
    }
    if (text !== null) {
      try {
        const doc = JSON.parse(text) as { format?: unknown; version?: unknown; servers?: unknown };
        if (doc.format !== FORMAT || doc.version !== VERSION || !doc.servers || typeof doc.servers !== 'object') throw new Error('not a server notes file');
        const now = Date.now();
        for (const [key, v] of Object.entries(doc.servers as Record<string, unknown>)) {
          const e = cleanEntry(v, now);
          if (e) notes.entries.set(key, e);
        }
      } catch (err) {
        // Only hints live here (what to try first): losing them costs a refused attempt, never mail.
        logger.warn('server notes corrupt; starting empty', { file, error: (err as Error).message });
      }
    }
    return notes;
  }

  recall(server: string): ServerFacts | undefined {
    const e = this.entries.get(server);
    if (!e) return undefined;
    if (e.at <= Date.now() - MAX_AGE_MS) {
      this.entries.delete(server);
      return undefined;
    }
    return { ...(e.refusedMechanisms ? { refusedMechanisms: [...e.refusedMechanisms] } : {}) };
  }

  note(server: string, facts: ServerFacts): void {
    this.entries.delete(server);
    const refused = facts.refusedMechanisms?.filter((m) => MECHANISMS.has(m)) ?? [];
    if (refused.length) this.entries.set(server, { at: Date.now(), refusedMechanisms: [...new Set(refused)] });
    while (this.entries.size > MAX_SERVERS) this.entries.delete(this.entries.keys().next().value!);
    void this.save();
  }

  /** Resolves once every write started so far has finished. */
  flush(): Promise<void> {
    return this.writing;
  }

  /** Resolves once everything noted so far is on disk (a failed write is logged; the notes stay in memory). */
  save(): Promise<void> {
    const body = JSON.stringify({ format: FORMAT, version: VERSION, servers: Object.fromEntries(this.entries) }, null, 1) + '\n';
    this.writing = this.writing.then(() =>
      writeFileAtomic(this.file, body).catch((err: Error) => this.logger.warn('could not save server notes', { file: this.file, error: err.message })),
    );
    return this.writing;
  }
}
