// Validation of command arguments before anything is written to the wire.
import { Pop3Error } from '../errors.js';

/** A message number: an integer from 1 upward (RFC 1939 msg numbers). */
export function checkMsg(command: string, msg: number): void {
  if (!Number.isSafeInteger(msg) || msg < 1) {
    throw new Pop3Error('EINVALID', `${command}: message number must be a positive integer, got ${String(msg)}`);
  }
}

/** A non-negative integer count (TOP's line count). */
export function checkCount(command: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Pop3Error('EINVALID', `${command}: line count must be a non-negative integer, got ${String(n)}`);
  }
}

/** Settle a promise into a value or an error, never leaving a rejection unhandled. */
export function settle<T>(p: Promise<T>): Promise<T | Pop3Error> {
  return p.then(
    (v) => v,
    (e: unknown) => (e instanceof Pop3Error ? e : new Pop3Error('EPROTOCOL', String(e), { cause: e })),
  );
}
