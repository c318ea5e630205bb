// What to do about a failed login at a known provider (Gmail, Microsoft): one sentence naming the fix, for the log and probe.
import { Pop3Error } from '../pop3/index.js';

const GMAIL_HOSTS = /(^|\.)(gmail|googlemail)\.com$/i;
const MICROSOFT_HOSTS = /(^|\.)(office365|outlook|hotmail|live)\.com$/i;

/** A hint for a failed login, or undefined when there is nothing provider-specific to say. */
export function loginHint(host: string, err: unknown, usedPassword: boolean): string | undefined {
  if (!(err instanceof Pop3Error)) return undefined;
  const text = `${err.serverText ?? ''} ${err.message}`;
  if (GMAIL_HOSTS.test(host)) {
    if (/not enabled for POP/i.test(text)) return 'Gmail has POP turned off for this account: Gmail settings > Forwarding and POP/IMAP > Enable POP';
    if (err.code === 'EAUTH' && usedPassword) {
      return 'Gmail takes an app password here, not the account password: Google Account > Security > 2-Step Verification > App passwords (16 letters; spaces do not matter)';
    }
  }
  if (MICROSOFT_HOSTS.test(host) && err.code === 'EAUTH' && usedPassword) {
    return 'Microsoft 365 and Outlook.com refuse passwords over POP3 (Basic authentication is off); use provider: microsoft with oauth (docs/oauth.md)';
  }
  return undefined;
}
