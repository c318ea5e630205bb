// Drops a binary's pages from the page cache before it is measured, so its file-backed RSS is that of a binary read from disk (a gateway after boot), not of one just written by the build.
//
// Why: a file the build has just written sits in the page cache as large folios, and a page fault in a mapped large
// folio maps all of it. Measured on this machine (Linux 6.18, ext4): `pop2mqtt-linux-x64 --version` right after
// `npm run build:binaries` 51.8 MiB peak RSS, the same binary after its cache was dropped 41.2 MiB (and it stays so
// on later runs). A gateway starts its binary after boot, from disk: the second figure is the one users see.
import { execFileSync } from 'node:child_process';

/** Write the file back and drop its cached pages (GNU dd `iflag=nocache count=0`); false when that is not possible here. */
export function dropPageCache(file: string): boolean {
  try {
    execFileSync('sync', [file], { stdio: 'ignore' });
    execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
