// mkdir -p that always settles: Node 20's fs.mkdir(..., { recursive: true }) never settles for a path under /proc, which hung every command given such a state_dir.

import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * Creates `dir` and its missing parents one level at a time (each with `mode`); an existing directory is fine.
 * Returns the directories this call created itself, outermost first (none when none was needed; one another process
 * created meanwhile is not counted). On failure, what it created is removed again (removeCreatedDirs).
 */
export async function makeDirs(dir: string, mode = 0o700): Promise<string[]> {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (let depth = 0; depth < 256; depth++) {
    try {
      const st = await fs.stat(cur);
      if (!st.isDirectory()) throw Object.assign(new Error(`${cur} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.unshift(cur);
      const parent = path.dirname(cur);
      if (parent === cur) break;
      cur = parent;
    }
  }
  const created: string[] = [];
  try {
    for (const d of missing) {
      try {
        await fs.mkdir(d, { mode });
        created.push(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // created meanwhile by someone else: fine
      }
    }
  } catch (e) {
    await removeCreatedDirs(created);
    throw e;
  }
  return created;
}

/**
 * Removes directories makeDirs created, innermost first, each only while it is empty (rmdir, never recursive): a
 * process that started using one meanwhile (the agent, a second `check`) keeps it and what it wrote there.
 */
export async function removeCreatedDirs(created: readonly string[]): Promise<void> {
  for (let i = created.length - 1; i >= 0; i--) {
    try {
      await fs.rmdir(created[i]!);
    } catch {
      return; // not empty (in use) or gone: its parents stay too
    }
  }
}
