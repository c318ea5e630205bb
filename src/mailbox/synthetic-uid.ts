// Mailbox identity for servers without UIDL: a stand-in UID hashed from Message-ID, Date, From and the size.
//
// Limits: two identical resends (same Message-ID, Date, From and size) get the same id and the second is
// taken for the first; a server that rewrites those headers (or the size, e.g. by adding a header on
// delivery) changes the id, so the message looks new once more. Mail without all three headers is only
// as distinct as what remains.
import { createHash } from 'node:crypto';
import { headerFields } from '../message/headers.js';

const IDENTITY = ['message-id', 'date', 'from'] as const;

/**
 * A UIDL substitute (RFC 1939 syntax: printable ASCII, well under 70 characters) from a TOP n 0 reply. Never throws:
 * the reply is already capped by the caller, and a block with no readable field hashes as one without the headers.
 * Values are the first instance of each header, unfolded, runs of white space made one space, not RFC 2047-decoded
 * (so no header decoder is loaded for an id).
 */
export function syntheticUid(headers: Buffer, size: number): string {
  const { fields } = headerFields(headers, { maxBytes: Infinity, maxHeaders: Infinity });
  const value = (key: string) => fields.find((f) => f.key === key)?.raw.replace(/\s+/g, ' ').trim() ?? '';
  const h = createHash('sha256');
  h.update(Buffer.from(IDENTITY.map(value).join('\n') + `\n${size}`, 'utf8'));
  return `syn-${h.digest('hex').slice(0, 40)}`;
}
