// Looks up and (as root) creates the unprivileged system users the real-server harnesses need, e.g. the Maildir owner for Dovecot.
import { readFile } from 'node:fs/promises';
import { run } from './daemon.js';

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

/** Read /etc/passwd for `name`; undefined when absent. */
export async function lookupUser(name: string): Promise<SystemUser | undefined> {
  const text = await readFile('/etc/passwd', 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/**
 * Return the system user `name`, creating it (useradd --system, no home, no shell; in its own group, or in an existing
 * `group`) if missing. Safe when parallel tests race.
 */
export async function ensureSystemUser(name: string, o: { group?: string } = {}): Promise<SystemUser> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const found = await lookupUser(name);
    if (found) return found;
    try {
      const group = o.group ? ['--gid', o.group] : ['--user-group'];
      await run('useradd', ['--system', ...group, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name]);
    } catch {
      // another test process may be creating it right now (passwd lock), or it exists now: look again
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`could not create system user ${name}`);
}
