// One OAuthTokenManager per OAuth mailbox of the config, kept across reloads while its OAuth settings stay the same, and the poll-target hooks built from it.
import type { Logger } from '../log.js';
import { OAuthTokenManager, type OAuthTokenManagerOptions } from './token-manager.js';

/** The part of a mailbox's config the token manager needs (already resolved: provider presets, *_file secrets). */
export interface OAuthMailboxSettings {
  id: string;
  auth: string;
  password?: string | undefined;
  oauth?: {
    token_url?: string | undefined;
    client_id?: string | undefined;
    client_secret?: string | undefined;
    refresh_token?: string | undefined;
    scope?: string | undefined;
  } | undefined;
}

/** What a poll needs from OAuth: a token getter, and a way to drop a token the server refused. */
export interface AccessTokenHooks {
  accessToken: () => Promise<string>;
  invalidateAccessToken: () => void;
}

export const OAUTH_MECHANISMS: readonly string[] = ['xoauth2', 'oauthbearer'];

export class MailboxTokens {
  private managers = new Map<string, { key: string; manager: OAuthTokenManager }>();

  constructor(private readonly opts: { logger: Logger } & Pick<OAuthTokenManagerOptions, 'fetchImpl' | 'ca' | 'timeoutMs' | 'backoff'>) {}

  /**
   * Hooks for a mailbox that logs in with OAuth (auth xoauth2/oauthbearer, or auto with oauth settings and no
   * password: with a password, auto uses the password mechanisms);
   * undefined for a password mailbox. The manager (and its cached token) is reused while nothing it
   * depends on changed.
   */
  hooksFor(mb: OAuthMailboxSettings, stateDir: string): AccessTokenHooks | undefined {
    const o = mb.oauth;
    const usesOAuth = OAUTH_MECHANISMS.includes(mb.auth) || (mb.auth === 'auto' && o !== undefined && mb.password === undefined);
    if (!usesOAuth || !o?.token_url || !o.client_id || !o.refresh_token) {
      this.managers.delete(mb.id);
      return undefined;
    }
    const key = JSON.stringify([stateDir, o.token_url, o.client_id, o.client_secret ?? '', o.refresh_token, o.scope ?? '']);
    let entry = this.managers.get(mb.id);
    if (!entry || entry.key !== key) {
      const manager = new OAuthTokenManager({
        mailboxId: mb.id, tokenUrl: o.token_url, clientId: o.client_id, clientSecret: o.client_secret, refreshToken: o.refresh_token,
        scope: o.scope, stateDir, logger: this.opts.logger.child(mb.id), fetchImpl: this.opts.fetchImpl, ca: this.opts.ca,
        timeoutMs: this.opts.timeoutMs, backoff: this.opts.backoff,
      });
      entry = { key, manager };
      this.managers.set(mb.id, entry);
    }
    const manager = entry.manager;
    return { accessToken: () => manager.getAccessToken(), invalidateAccessToken: () => manager.invalidate() };
  }

  /** Drop managers of mailboxes that are gone. */
  retain(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of [...this.managers.keys()]) if (!keep.has(id)) this.managers.delete(id);
  }

  manager(id: string): OAuthTokenManager | undefined {
    return this.managers.get(id)?.manager;
  }
}
