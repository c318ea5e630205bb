// The per-rule Home Assistant binary_sensor entities seen so far (e.g. one per camera), kept in <state_dir>/ha-entities.json so a restart re-announces them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../state/atomic-file.js';

export interface HaEntity {
  /** the rendered `per` value: the topic level and id of the entity */
  key: string;
  /** the entity name shown in Home Assistant */
  name: string;
}

type Data = Record<string, HaEntity[]>;

/** Longest key or name kept; the renderers cap them before, this only guards a hand-edited file. */
const MAX_TEXT = 200;

export class HaEntityRegistry {
  private data: Data = {};
  private saving: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string, private readonly log: Logger) {}

  /** Reads the file; a missing one is empty, an unreadable or malformed one is logged and started afresh (entities come back with the next alert). */
  static async open(stateDir: string, log: Logger): Promise<HaEntityRegistry> {
    const reg = new HaEntityRegistry(path.join(stateDir, 'ha-entities.json'), log);
    let text: string;
    try {
      text = await fs.readFile(reg.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('Home Assistant entity list unreadable; starting empty', { file: reg.file, error: (e as Error).message });
      return reg;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      for (const [rule, list] of Object.entries(parsed as Record<string, unknown>)) {
        if (!Array.isArray(list)) continue;
        reg.data[rule] = list
          .filter((e): e is HaEntity => !!e && typeof e.key === 'string' && typeof e.name === 'string' && e.key.length <= MAX_TEXT && e.name.length <= MAX_TEXT);
      }
    } catch (e) {
      log.warn('Home Assistant entity list malformed; starting empty', { file: reg.file, error: (e as Error).message });
      reg.data = {};
    }
    return reg;
  }

  entities(rule: string): HaEntity[] {
    return this.data[rule] ?? [];
  }

  /** Records `key` for `rule`: 'new' (save() it), 'known', or 'full' when the rule already has `max` entities. */
  add(rule: string, entity: HaEntity, max: number): 'new' | 'known' | 'full' {
    const list = (this.data[rule] ??= []);
    if (list.some((e) => e.key === entity.key)) return 'known';
    if (list.length >= max) return 'full';
    list.push(entity);
    return 'new';
  }

  /** Forgets rules not in `keep` (removed, or no longer with a binary_sensor); true when something was dropped. */
  prune(keep: ReadonlySet<string>): boolean {
    let changed = false;
    for (const rule of Object.keys(this.data)) {
      if (!keep.has(rule)) {
        delete this.data[rule];
        changed = true;
      }
    }
    return changed;
  }

  /** Resolves when the saves started so far are done. */
  saved(): Promise<void> {
    return this.saving;
  }

  /** Writes the file atomically; saves run one after the other. Failures are logged, not thrown. */
  save(): Promise<void> {
    const text = JSON.stringify(this.data);
    this.saving = this.saving.then(() => writeFileAtomic(this.file, text)).catch((e: unknown) => {
      this.log.warn('Home Assistant entity list not saved', { file: this.file, error: (e as Error).message });
    });
    return this.saving;
  }
}
