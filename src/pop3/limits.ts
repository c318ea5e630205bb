// Default deadlines, size caps and pipelining window of a POP3 session, in one place so they are easy to audit.
import { Pop3Error } from './errors.js';

/** An option that must be a positive number when given: the default when absent, EINVALID when not positive. */
export function positiveOption(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Pop3Error('EINVALID', `${name} must be a positive number`);
  return v;
}

export const DEFAULT_TIMEOUTS = {
  /** DNS + TCP + TLS handshake together. */
  connectMs: 15_000,
  /** From transport ready until the greeting line is complete (absolute, trickling does not extend it). */
  greetingMs: 15_000,
  /** While a command is outstanding: the longest wait for the next complete line (status or data). */
  commandMs: 30_000,
  /** The whole session from connect() to close, whatever happens. */
  sessionMs: 600_000,
  /** Minimum reply rate: fewer bytes than this per second over any replyRateWindowMs of transfer ends the session (ESLOW); 0 turns it off. */
  minReplyBytesPerSec: 256,
  replyRateWindowMs: 30_000,
} as const;

export const DEFAULT_LIMITS = {
  /** Longest line (status or data), excluding its line end. */
  maxLineBytes: 64 * 1024,
  /** Largest multi-line reply the client buffers in memory (decoded bytes). */
  maxReplyBytes: 64 * 1024 * 1024,
} as const;

export const DEFAULT_PIPELINE_WINDOW = 128;

/** RFC 2449 section 4: commands, including arguments and CRLF, are at most 255 octets. */
export const MAX_COMMAND_OCTETS = 255;

/** Upper bound on SCRAM iteration counts accepted from a server (PBKDF2 cost cannot be cancelled). */
export const MAX_SCRAM_ITERATIONS = 1_000_000;

/** After "+OK" to QUIT, how long to wait for the server to close before destroying the socket. */
export const QUIT_CLOSE_GRACE_MS = 2_000;
