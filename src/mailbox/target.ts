// A mailbox as the poller and `probe` see it: built from the config in one place, and turned into POP3 client options in one place.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MailboxConfig } from '../config/index.js';
import type { AuthMechanism, Pop3Options } from '../pop3/index.js';

export interface PollTarget {
  id: string;
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  ca?: Buffer;
  servername?: string;
  fingerprint?: string;
  minTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  username: string;
  password?: string;
  accessToken?: () => Promise<string>;
  auth: AuthMechanism;
  allowInsecureAuth: boolean;
  keep: boolean;
  existing: 'skip' | 'process';
  maxMessageSize: number;
  timeouts: { connectMs: number; greetingMs: number; commandMs: number; sessionMs: number; minReplyBytesPerSec?: number; replyRateWindowMs?: number };
  pipelining: boolean;
  fastUidl: boolean;
}

/** The target of a configured mailbox; `ca_file` is read now, relative to `configDir`. No OAuth hooks (the caller adds them). */
export function pollTargetOf(mb: MailboxConfig, configDir: string): PollTarget {
  return {
    id: mb.id, host: mb.host, port: mb.port, tls: mb.tls,
    ca: mb.ca_file ? readFileSync(path.resolve(configDir, mb.ca_file)) : undefined,
    servername: mb.servername, fingerprint: mb.fingerprint, minTlsVersion: mb.min_tls_version,
    username: mb.username, password: mb.password, auth: mb.auth, allowInsecureAuth: mb.allow_insecure_auth,
    keep: mb.keep, existing: mb.existing, maxMessageSize: mb.max_message_size,
    timeouts: { connectMs: mb.timeouts.connect, greetingMs: mb.timeouts.greeting, commandMs: mb.timeouts.command, sessionMs: mb.timeouts.session,
      minReplyBytesPerSec: mb.timeouts.min_reply_rate, replyRateWindowMs: mb.timeouts.reply_rate_window },
    pipelining: mb.pipelining, fastUidl: mb.fast_uidl,
  };
}

/** The connection part of a target as POP3 client options (session hooks such as logger, signal, TLS session and memory go on top). */
export function clientOptionsOf(t: PollTarget): Pop3Options {
  return {
    host: t.host, port: t.port, tls: t.tls, ca: t.ca, servername: t.servername,
    fingerprint: t.fingerprint, minTlsVersion: t.minTlsVersion, timeouts: t.timeouts, pipelining: t.pipelining,
  };
}
