// Crash-safe file writes: temp file, fsync, rename, fsync of the directory, so a power cut leaves the old or the new file, never a torn one.
import { promises as fs, close, fsync, open, rename, unlink, writev } from 'node:fs';
import path from 'node:path';

let counter = 0;

/**
 * A callback-style fs call as a promise. The calls here work on plain descriptors, not fs/promises FileHandles:
 * a FileHandle is an EventEmitter with its own close bookkeeping, and a poll writes a few hundred of these files
 * (each outbox entry, each state save), so that machinery was a large part of the poll's CPU time.
 */
function call<T = void>(fn: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

/**
 * `data` may be given in parts (written one after the other), so a caller need not copy them into one buffer.
 * `syncDir: false` leaves the directory's fsync to the caller, who writes several files and syncs their directory once
 * (the files are durable only after that).
 */
export async function writeFileAtomic(file: string, data: string | Buffer | readonly Buffer[], mode = 0o600, o: { syncDir?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++counter}.tmp`);
  let fd: number | undefined;
  try {
    fd = await call<number>((done) => open(tmp, 'w', mode, done));
    await writeAll(fd, typeof data === 'string' ? [Buffer.from(data)] : Buffer.isBuffer(data) ? [data] : data);
    const written = fd;
    await call((done) => fsync(written, done));
    fd = undefined;
    await call((done) => close(written, done));
    await call((done) => rename(tmp, file, done));
  } catch (err) {
    const left = fd;
    if (left !== undefined) await call((done) => close(left, done)).catch(() => {});
    await call((done) => unlink(tmp, done)).catch(() => {});
    throw err;
  }
  if (o.syncDir !== false) await fsyncDir(dir);
}

/** Write the parts in order with one writev each time (a short write, e.g. a full disk, goes on with what is left). */
async function writeAll(fd: number, data: readonly Buffer[]): Promise<void> {
  let parts = data;
  let left = parts.reduce((n, p) => n + p.length, 0);
  while (left > 0) {
    const current = parts;
    const bytesWritten = await call<number>((done) => writev(fd, current as Buffer[], done));
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
  let fd: number | undefined;
  try {
    fd = await call<number>((done) => open(dir, 'r', done));
    const d = fd;
    await call((done) => fsync(d, done));
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    const d = fd;
    if (d !== undefined) await call((done) => close(d, done)).catch(() => {});
  }
}
