// mkdir -p that always settles: Node 20's fs.mkdir(..., { recursive: true }) never settles for a path under /proc, which hung every command given such a state_dir.

import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * Creates `dir` and its missing parents one level at a time (each with `mode`); an existing directory is fine.
 * Returns the first directory it created (undefined when none was needed). On failure, what it created is removed.
 */
export async function makeDirs(dir: string, mode = 0o700): Promise<string | undefined> {
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
  try {
    for (const d of missing) {
      await fs.mkdir(d, { mode }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e; // created meanwhile by someone else: fine
      });
    }
  } catch (e) {
    if (missing[0]) await fs.rm(missing[0], { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  return missing[0];
}
