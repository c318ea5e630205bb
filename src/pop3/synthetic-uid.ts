// Stable message identity for servers without UIDL: a hash of Message-ID, Date, From and the size.
//
// Limits: two identical resends (same Message-ID, Date, From and size) get the same id and the second is
// taken for the first; a server that rewrites those headers (or the size, e.g. by adding a header on
// delivery) changes the id, so the message looks new once more. Mail without all three headers is only
// as distinct as what remains.
import { createHash } from 'node:crypto';

/** Unfolded values of the first occurrence of each wanted header in a header block (latin1-safe, bytes kept). */
export function headerValues(headers: Buffer, wanted: readonly string[]): Map<string, string> {
  const text = headers.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const block = end >= 0 ? text.slice(0, end) : text;
  const want = new Set(wanted.map((w) => w.toLowerCase()));
  const out = new Map<string, string>();
  let name: string | null = null;
  let value = '';
  const flush = () => {
    if (name !== null && want.has(name) && !out.has(name)) out.set(name, value.replace(/\s+/g, ' ').trim());
    name = null;
    value = '';
  };
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && name !== null) {
      value += ' ' + line;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon > 0) {
      name = line.slice(0, colon).trim().toLowerCase();
      value = line.slice(colon + 1);
    }
  }
  flush();
  return out;
}

/** A UIDL substitute (RFC 1939 syntax: printable ASCII, well under 70 characters). */
export function syntheticUid(headers: Buffer, size: number): string {
  const v = headerValues(headers, ['message-id', 'date', 'from']);
  const h = createHash('sha256');
  h.update(['message-id', 'date', 'from'].map((k) => v.get(k) ?? '').join('\n') + `\n${size}`, 'latin1');
  return `syn-${h.digest('hex').slice(0, 40)}`;
}
