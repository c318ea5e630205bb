// Maildrop listing commands: STAT, LIST and UIDL (whole listing, one message, or many pipelined probes).
import { Pop3Error, errorFromReply } from '../errors.js';
import type { SessionContext } from '../session-context.js';
import { checkMsg, settle } from './args.js';

const TX = ['TRANSACTION'] as const;

/** "2 320" -> { count: 2, size: 320 } (RFC 1939 drop listing; extra text after the numbers is allowed). */
export function parseStat(text: string): { count: number; size: number } {
  const m = /^(\d+)\s+(\d+)(?:\s|$)/.exec(text);
  if (!m) throw new Pop3Error('EPROTOCOL', `STAT: malformed drop listing ${JSON.stringify(text.slice(0, 80))}`);
  return { count: Number(m[1]), size: Number(m[2]) };
}

/** One "n value" pair of a LIST/UIDL reply; value validated by `valueRe`. */
function parsePair(command: string, line: string, valueRe: RegExp): [number, string] {
  const m = /^\s*(\d+)\s+(\S+)/.exec(line);
  if (!m || !valueRe.test(m[2]!)) {
    throw new Pop3Error('EPROTOCOL', `${command}: malformed listing line ${JSON.stringify(line.slice(0, 80))}`);
  }
  return [Number(m[1]), m[2]!];
}

const SIZE_RE = /^\d+$/;
/** RFC 1939: a unique-id is 1 to 70 characters in 0x21..0x7E. Longer ones are accepted (seen in the wild). */
const UID_RE = /^[\x21-\x7e]+$/;

function dataLines(data: Buffer | undefined): string[] {
  if (!data || data.length === 0) return [];
  return data
    .toString('latin1')
    .split('\r\n')
    .filter((l) => l.length > 0);
}

/** Parse the data of a multi-line LIST reply. */
export function parseListing(data: Buffer | undefined): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of dataLines(data)) {
    const [n, v] = parsePair('LIST', line, SIZE_RE);
    out.set(n, Number(v));
  }
  return out;
}

/** Parse the data of a multi-line UIDL reply. */
export function parseUidListing(data: Buffer | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of dataLines(data)) {
    const [n, v] = parsePair('UIDL', line, UID_RE);
    out.set(n, v);
  }
  return out;
}

export async function stat(ctx: SessionContext): Promise<{ count: number; size: number }> {
  ctx.requireState('STAT', TX);
  const r = await ctx.conn.send({ name: 'STAT', line: 'STAT', multiline: false });
  if (r.status !== '+OK') throw errorFromReply('STAT', r.text);
  return parseStat(r.text);
}

export async function listAll(ctx: SessionContext): Promise<Map<number, number>> {
  ctx.requireState('LIST', TX);
  const r = await ctx.conn.send({ name: 'LIST', line: 'LIST', multiline: true });
  if (r.status !== '+OK') throw errorFromReply('LIST', r.text);
  return parseListing(r.data);
}

/** Size of one message, or null when the server says "-ERR" (no such message). */
export async function listOne(ctx: SessionContext, msg: number): Promise<number | null> {
  ctx.requireState('LIST', TX);
  checkMsg('LIST', msg);
  const r = await ctx.conn.send({ name: 'LIST', line: `LIST ${msg}`, multiline: false });
  if (r.status !== '+OK') return null;
  return Number(parsePair('LIST', r.text, SIZE_RE)[1]);
}

export async function uidlAll(ctx: SessionContext): Promise<Map<number, string>> {
  ctx.requireState('UIDL', TX);
  const r = await ctx.conn.send({ name: 'UIDL', line: 'UIDL', multiline: true });
  if (r.status !== '+OK') {
    // The whole listing has no message argument to get wrong: "-ERR" means no UIDL here, whatever CAPA said.
    ctx.uidlRefused = true;
    throw errorFromReply('UIDL', r.text);
  }
  return parseUidListing(r.data);
}

/** The UID in a "+OK n uid" reply to `UIDL n`. */
export function parseUidlOne(text: string): string {
  return parsePair('UIDL', text, UID_RE)[1];
}

function uidlOneSend(ctx: SessionContext, msg: number): Promise<string | null> {
  return ctx.conn.send({ name: 'UIDL', line: `UIDL ${msg}`, multiline: false }).then((r) => (r.status === '+OK' ? parseUidlOne(r.text) : null));
}

/** UID of one message, or null when the server says "-ERR" (no such message). */
export async function uidlOne(ctx: SessionContext, msg: number): Promise<string | null> {
  ctx.requireState('UIDL', TX);
  checkMsg('UIDL', msg);
  return uidlOneSend(ctx, msg);
}

/**
 * `UIDL n` for each message, pipelined when allowed. "-ERR" gives null for that message; a failure of the
 * connection (or a malformed reply) rejects the whole call.
 */
export async function uidlMany(ctx: SessionContext, msgs: readonly number[]): Promise<Map<number, string | null>> {
  ctx.requireState('UIDL', TX);
  for (const m of msgs) checkMsg('UIDL', m);
  const pending = msgs.map((m) => settle(uidlOneSend(ctx, m)));
  const out = new Map<number, string | null>();
  let firstErr: Pop3Error | null = null;
  for (let i = 0; i < msgs.length; i++) {
    const v = await pending[i]!;
    if (v instanceof Pop3Error) firstErr ??= v;
    else out.set(msgs[i]!, v);
  }
  if (firstErr) throw firstErr;
  return out;
}
