// Shared parsers for human-written durations ("30s", "1h30m") and sizes ("25MB"), used by the config and the rule language.

/** Thrown for a duration or size string that cannot be parsed; the message says what was expected. */
export class UnitParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitParseError';
  }
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parse a duration into milliseconds.
 * Accepts a non-negative number (already milliseconds) or a string of one or more `<number><unit>` parts:
 * units ms, s (sec), m (min), h, d, w; e.g. "250ms", "30s", "5m", "1h30m", "1.5h", "2d". A bare numeric string is milliseconds.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new UnitParseError(`invalid duration ${input}: must be a finite number of milliseconds >= 0`);
    return Math.round(input);
  }
  const s = input.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s));
  const part = /(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)/y;
  let total = 0;
  let pos = 0;
  let parts = 0;
  while (pos < s.length) {
    while (s[pos] === ' ') pos++;
    if (pos >= s.length) break;
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) throw new UnitParseError(`invalid duration "${input}": expected e.g. 250ms, 30s, 5m, 1h, 2d or 1h30m`);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = part.lastIndex;
    parts++;
  }
  if (parts === 0) throw new UnitParseError(`invalid duration "${input}": expected e.g. 250ms, 30s, 5m, 1h, 2d or 1h30m`);
  if (!Number.isFinite(total)) throw new UnitParseError(`invalid duration "${input}": too large`);
  return Math.round(total);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parse a size into bytes.
 * Accepts a non-negative number (bytes) or a string `<number><unit>`: B, K/KB/KiB, M/MB/MiB, G/GB/GiB.
 * All multiples are 1024-based: "1KB" = "1KiB" = 1024 bytes, "25MB" = 26 214 400 bytes (as in mail server quotas).
 */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new UnitParseError(`invalid size ${input}: must be a finite number of bytes >= 0`);
    return Math.floor(input);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UnitParseError(`invalid size "${input}": expected e.g. 512, 512KB, 25MB or 1GiB (1024-based)`);
  const v = Number(m[1]) * unit;
  if (!Number.isFinite(v)) throw new UnitParseError(`invalid size "${input}": too large`);
  return Math.floor(v);
}

/** True when parseDuration accepts the input. */
export function isDuration(input: unknown): boolean {
  if (typeof input !== 'string' && typeof input !== 'number') return false;
  try { parseDuration(input); return true; } catch { return false; }
}

/** True when parseSize accepts the input. */
export function isSize(input: unknown): boolean {
  if (typeof input !== 'string' && typeof input !== 'number') return false;
  try { parseSize(input); return true; } catch { return false; }
}
