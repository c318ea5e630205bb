// Crash-safe file writes: temp file, fsync, rename, fsync of the directory, so a power cut leaves the old or the new file, never a torn one.
import { promises as fs } from 'node:fs';
import path from 'node:path';

let counter = 0;

/**
 * `data` may be given in parts (written one after the other), so a caller need not copy them into one buffer.
 * `syncDir: false` leaves the directory's fsync to the caller, who writes several files and syncs their directory once
 * (the files are durable only after that).
 */
export async function writeFileAtomic(file: string, data: string | Buffer | readonly Buffer[], mode = 0o600, o: { syncDir?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++counter}.tmp`);
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(tmp, 'w', mode);
    await writeAll(fh, typeof data === 'string' ? [Buffer.from(data)] : Buffer.isBuffer(data) ? [data] : data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, file);
  } catch (err) {
    if (fh) await fh.close().catch(() => {});
    await fs.unlink(tmp).catch(() => {});
    throw err;
  }
  if (o.syncDir !== false) await fsyncDir(dir);
}

/** Write the parts in order with one writev each time (a short write, e.g. a full disk, goes on with what is left). */
async function writeAll(fh: fs.FileHandle, data: readonly Buffer[]): Promise<void> {
  let parts = data;
  let left = parts.reduce((n, p) => n + p.length, 0);
  while (left > 0) {
    const { bytesWritten } = await fh.writev(parts as Buffer[]);
    if (bytesWritten <= 0) throw new Error(`writev wrote ${bytesWritten} of ${left} bytes`);
    left -= bytesWritten;
    if (left === 0) break;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const p of parts) {
      if (skip >= p.length) {
        skip -= p.length;
        continue;
      }
      rest.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
    parts = rest;
  }
}

/** Removes temp files of writeFileAtomic(file) left by a process killed mid-write (call before the first write). */
export async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (n.startsWith(prefix) && n.endsWith('.tmp')) await fs.unlink(path.join(dir, n)).catch(() => {});
}

export async function fsyncDir(dir: string): Promise<void> {
  let dh: fs.FileHandle | undefined;
  try {
    dh = await fs.open(dir, 'r');
    await dh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await dh?.close().catch(() => {});
  }
}
