// Public surface of the OAuth2 module: the token manager, its errors, and the per-mailbox registry the agent uses.
export { OAuthTokenManager, type OAuthTokenManagerOptions, type OAuthBackoffPolicy } from './token-manager.js';
export { OAuthError, type OAuthErrorCode, type OAuthRetryHint } from './errors.js';
export { MailboxTokens, OAUTH_MECHANISMS, type AccessTokenHooks, type OAuthMailboxSettings } from './mailbox-tokens.js';
export type { FetchLike } from './form-post.js';
