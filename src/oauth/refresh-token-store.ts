// The rotated refresh token of one mailbox on disk (<state_dir>/<mailbox>.oauth.json, mode 0600), tied to the config token it descends from.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { registerSecret, type Logger } from '../log.js';
import { writeFileAtomic } from '../state/atomic-file.js';
import { isoTime } from '../iso-time.js';

/**
 * File format. `config_sha256` is the SHA-256 of the refresh token in the config when the chain of rotations
 * started: while the config still holds that token, the saved one is newer and wins; once the user puts a
 * different token in the config (a new consent), the config wins and the file is ignored.
 */
interface StoredToken {
  version: 1;
  refresh_token: string;
  config_sha256: string;
  saved_at: string;
}

export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class RefreshTokenStore {
  readonly file: string;

  constructor(stateDir: string, mailboxId: string, private readonly logger: Logger) {
    this.file = path.join(stateDir, `${mailboxId}.oauth.json`);
  }

  /** The saved refresh token if it descends from `configToken`; undefined otherwise (missing, unreadable, stale). */
  async load(configToken: string): Promise<string | undefined> {
    let text: string;
    try {
      const st = await fs.stat(this.file);
      if ((st.mode & 0o077) !== 0) {
        this.logger.warn('OAuth token file was readable by others: mode set to 0600', { file: this.file });
        await fs.chmod(this.file, 0o600).catch(() => {});
      }
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn('OAuth token file unreadable: using the refresh token from the config', { file: this.file, error: (e as NodeJS.ErrnoException).code ?? 'error' });
      return undefined;
    }
    let data: Partial<StoredToken>;
    try {
      data = JSON.parse(text) as Partial<StoredToken>;
    } catch {
      this.logger.warn('OAuth token file is not valid JSON: using the refresh token from the config', { file: this.file });
      return undefined;
    }
    if (data.version !== 1 || typeof data.refresh_token !== 'string' || data.refresh_token === '' || typeof data.config_sha256 !== 'string') {
      this.logger.warn('OAuth token file has an unknown format: using the refresh token from the config', { file: this.file });
      return undefined;
    }
    registerSecret(data.refresh_token);
    if (data.config_sha256 !== tokenFingerprint(configToken)) {
      this.logger.info('the refresh token in the config changed since the saved one was rotated: using the config token', { file: this.file });
      return undefined;
    }
    return data.refresh_token;
  }

  async save(refreshToken: string, configToken: string): Promise<void> {
    const data: StoredToken = { version: 1, refresh_token: refreshToken, config_sha256: tokenFingerprint(configToken), saved_at: isoTime() };
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', 0o600);
    // open(2) applies the umask, which can only remove bits; restore exactly owner read+write.
    await fs.chmod(this.file, 0o600);
  }
}
