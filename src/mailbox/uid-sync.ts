// Works out which UID sits at which message number with as few bytes as possible: STAT short-circuit, then fastuidl-style probes, else full UIDL.
import type { Logger } from '../log.js';
import { Pop3Error, type Pop3Client } from '../pop3/index.js';
import { syntheticUid } from './synthetic-uid.js';
import type { MailboxState } from '../state/mailbox-state.js';
import { DEFAULT_HEADER_LIMITS } from '../message/headers.js';

/**
 * Largest `TOP n 0` reply kept: the header parser's own limit plus room for the blank line and a few server-added
 * fields. A larger reply is read to its end and dropped, and only that message fails (ELIMIT).
 */
export const HEADER_TOP_CAP = DEFAULT_HEADER_LIMITS.maxBytes + 4096;

export interface UidSync {
  /** Nothing changed since the last poll and nothing is left to do: the poll may end here. */
  unchanged: boolean;
  uidByMsg: Map<number, string>;
  /** How the map was obtained, for statistics and tests. */
  method: 'short-circuit' | 'incremental' | 'full' | 'synthetic' | 'empty';
}

export interface UidSyncOptions {
  fast: boolean;
  hasUnfinished: boolean;
  logger: Logger;
  /** A `UIDL n` answer already in hand (asked together with the login): not asked again. */
  prefetched?: { msg: number; uid: string | null } | undefined;
}

export async function syncUids(client: Pop3Client, state: MailboxState, stat: { count: number; size: number }, o: UidSyncOptions): Promise<UidSync> {
  const prev = state.data.serverUids;
  const prevStat = state.data.stat;
  const sameStat = !!prevStat && prevStat.count === stat.count && prevStat.size === stat.size && prev.length === stat.count;

  if (stat.count === 0) {
    const unchanged = sameStat && !o.hasUnfinished;
    state.syncServer([], stat);
    return { unchanged, uidByMsg: new Map(), method: 'empty' };
  }

  // A server may list UIDL in CAPA and still refuse it: once refused in this session, it is not asked again.
  const uidlUsable = (client.capabilities ? client.capabilities.has('UIDL') : true) && !client.uidlRefused;
  if (!uidlUsable) return synthetic(client, state, stat, o.logger);

  // STAT short-circuit: same count and octets, and the last message still carries the last UID we saw.
  if (sameStat && !o.hasUnfinished) {
    const last = o.prefetched?.msg === stat.count ? o.prefetched.uid : await probe(client, stat.count);
    if (last === prev[prev.length - 1]) {
      return { unchanged: true, uidByMsg: new Map(prev.map((u, i) => [i + 1, u])), method: 'short-circuit' };
    }
  }

  if (o.fast && prev.length > 0) {
    const inc = await incremental(client, prev, stat.count, o.prefetched);
    if (inc) {
      state.syncServer(inc, stat);
      return { unchanged: false, uidByMsg: new Map(inc.map((u, i) => [i + 1, u])), method: 'incremental' };
    }
    o.logger.debug('incremental UIDL assumptions failed; full UIDL');
  }

  let full: Map<number, string>;
  try {
    full = await client.uidl();
  } catch (err) {
    if (err instanceof Pop3Error && err.code === 'ERR') return synthetic(client, state, stat, o.logger);
    throw err;
  }
  // A listing that leaves out messages STAT counted: those get a synthetic id (alone), instead of never being seen.
  const missing: number[] = [];
  for (let m = 1; m <= stat.count; m++) if (!full.has(m)) missing.push(m);
  if (missing.length) {
    o.logger.warn('UIDL listing leaves out messages: using synthetic ids for them', { messages: missing.length });
    for (const [m, uid] of await syntheticIds(client, missing, o.logger)) full.set(m, uid);
  }
  const ordered = [...full.entries()].sort((a, b) => a[0] - b[0]);
  state.syncServer(ordered.map(([, u]) => u), stat);
  return { unchanged: false, uidByMsg: new Map(ordered), method: 'full' };
}

async function probe(client: Pop3Client, msg: number): Promise<string | null> {
  return client.uidl(msg);
}

/**
 * fastuidl: messages keep their relative order and UIDs are never reused, so the survivors of the last poll sit at
 * positions 1..s and new mail follows. Returns the full ordered UID list, or null when an assumption fails.
 */
async function incremental(client: Pop3Client, prev: readonly string[], count: number, prefetched?: { msg: number; uid: string | null }): Promise<string[] | null> {
  const p = prev.length;
  const index = new Map(prev.map((u, i) => [u, i]));
  const seen = new Map<number, string | null>();
  // A prefetched answer is only good while that message exists: positions beyond the count are not asked.
  if (prefetched && prefetched.msg <= count) seen.set(prefetched.msg, prefetched.uid);
  // Every position asked is within STAT's count: "-ERR" to `UIDL n` there means the server refuses UIDL (whatever
  // CAPA says), and the full listing decides (it falls back to synthetic ids when refused too).
  let refused = false;
  const at = async (i: number) => {
    if (!seen.has(i)) seen.set(i, await client.uidl(i));
    const uid = seen.get(i) ?? null;
    if (uid === null) refused = true;
    return uid;
  };

  let survivors: readonly string[];
  const lastPos = Math.min(count, p);
  if (count >= p && (await at(p)) === prev[p - 1]) {
    survivors = prev; // nothing before p moved: the common case, new mail appended
  } else if (refused) {
    return null;
  } else {
    // The mailbox shrank (another client deleted mail): binary-search the number s of survivors.
    let lo = 0;
    let hi = lastPos;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const uid = await at(mid);
      if (refused) return null;
      if (uid !== null && index.has(uid)) lo = mid;
      else hi = mid - 1;
    }
    const s = lo;
    if (s === 0) {
      survivors = [];
    } else {
      // Survivors are contiguous in the old list only if the first and last line up; otherwise ask for the full list.
      const first = await at(1);
      const a = first === null ? -1 : (index.get(first) ?? -1);
      const lastUid = await at(s);
      if (a < 0 || p - a !== s || lastUid !== prev[p - 1]) return null;
      survivors = prev.slice(a);
    }
  }
  const newPositions: number[] = [];
  for (let i = survivors.length + 1; i <= count; i++) if (!seen.has(i)) newPositions.push(i);
  const got = newPositions.length ? await client.uidlMany(newPositions) : new Map<number, string | null>();
  const fresh: string[] = [];
  const known = new Set(survivors);
  for (let i = survivors.length + 1; i <= count; i++) {
    const uid = seen.has(i) ? seen.get(i)! : (got.get(i) ?? null);
    if (uid === null || index.has(uid) || known.has(uid)) return null; // gap, reordering or a reused UID
    known.add(uid);
    fresh.push(uid);
  }
  return [...survivors, ...fresh];
}

/** No UIDL on this server: identify messages by a hash of Message-ID, Date, From and size (see README for the limits). */
async function synthetic(client: Pop3Client, state: MailboxState, stat: { count: number; size: number }, logger: Logger): Promise<UidSync> {
  logger.warn('server has no UIDL: using synthetic ids from Message-ID, Date, From and size (costs a TOP per message per poll)');
  const sizes = await client.list();
  const msgs = [...sizes.keys()].sort((a, b) => a - b);
  const map = await syntheticIds(client, msgs, logger, sizes);
  state.syncServer(msgs.filter((m) => map.has(m)).map((m) => map.get(m)!), stat);
  return { unchanged: false, uidByMsg: map, method: 'synthetic' };
}

/**
 * Synthetic ids for `msgs`: each header block is hashed as its TOP reply completes and then dropped (capped at
 * HEADER_TOP_CAP). A message whose TOP fails has no id this poll and is logged (it cannot be charged to state).
 */
async function syntheticIds(client: Pop3Client, msgs: number[], logger: Logger, known?: Map<number, number>): Promise<Map<number, string>> {
  const sizes = known ?? new Map<number, number>();
  const unsized = msgs.filter((m) => !sizes.has(m));
  if (unsized.length) {
    const got = await Promise.all(unsized.map((m) => client.list(m)));
    unsized.forEach((m, i) => sizes.set(m, got[i] ?? 0));
  }
  const map = new Map<number, string>();
  await client.topEach(msgs, 0, (m, h) => {
    if (h instanceof Error) logger.warn('no synthetic id for a message: its headers could not be read', { msg: m, error: h.message });
    else map.set(m, syntheticUid(h, sizes.get(m) ?? 0));
  }, { maxBytes: HEADER_TOP_CAP });
  return map;
}
