// One poll of one mailbox: sync UIDs with the saved state, fetch the cheapest stage each rule needs, queue alerts, DELE after acks.
import type { Logger } from '../log.js';
import { Pop3Client, Pop3Error, type ServerNotebook } from '../pop3/index.js';
import type { RuleSet, MessageData, RuleMatch } from '../rules/index.js';
import { loadHeaderDecoder, parseHeaders } from '../message/headers.js';
import { splitHeaderBody } from '../message/preview.js';
import { buildPublications, type Publication } from '../alerts/build.js';
import type { Outbox, OutboxItem } from '../alerts/outbox.js';
import type { MailboxState } from '../state/mailbox-state.js';
import { syncUids, HEADER_TOP_CAP } from './uid-sync.js';
import { fetchFull } from './fetch-full.js';
import { clientOptionsOf, type PollTarget } from './target.js';
import { admitCommands } from './command-guard.js';
import type { RateLimiter } from '../rules/rate-limit.js';

/** What the poller needs to know about a mailbox, already resolved from the config. */

export interface PollDeps {
  target: PollTarget;
  ruleSet: RuleSet;
  state: MailboxState;
  /** True on a first run or after the state file was rebuilt: the `existing` policy applies. */
  firstRun: boolean;
  outbox: Outbox;
  baseTopic: string;
  rateLimiter: RateLimiter;
  logger: Logger;
  signal?: AbortSignal;
  /** How long to wait for broker acknowledgements inside the session before leaving the rest to the outbox. */
  ackTimeoutMs: number;
  tlsSession?: Buffer | null;
  onTlsSession?: (s: Buffer) => void;
  /** Per-server memory (refused mechanisms), persisted by the runner in the state directory. */
  serverNotes?: ServerNotebook;
  /** Extra publications per match (Home Assistant event and image topics), queued with the rule's own. */
  extraPublications?: (match: RuleMatch, data: MessageData, pubs: Publication[]) => Publication[];
  /** Messages evaluated per batch: bounds memory and lets alerts flow during a long first poll. */
  batchSize?: number;
  progressEveryMs?: number;
}

export interface PollResult {
  mailbox: string;
  messages: number;
  octets: number;
  newMessages: number;
  alerts: number;
  deleted: number;
  failed: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  shortCircuit: boolean;
  topFetches: number;
  retrFetches: number;
  /** Messages whose MIME structure broke a parser limit (parts, depth, attachments, sizes). */
  limitsExceeded: number;
  /** Messages left for a later poll (broker not acknowledging, outbox full, fetch errors). */
  deferred: number;
}

export const MAX_ATTEMPTS = 5;

/** Room for the body lines of a `TOP n N` preview, on top of the header block: a larger reply fails that message. */
const PREVIEW_TOP_BYTES = 1024 * 1024;

export async function pollMailbox(d: PollDeps): Promise<PollResult> {
  const t0 = Date.now();
  const { target, state, logger } = d;
  const result: PollResult = {
    mailbox: target.id, messages: 0, octets: 0, newMessages: 0, alerts: 0, deleted: 0, failed: 0,
    bytesIn: 0, bytesOut: 0, durationMs: 0, shortCircuit: false, topFetches: 0, retrFetches: 0, deferred: 0, limitsExceeded: 0,
  };
  const client = await Pop3Client.connect({
    ...clientOptionsOf(target), tlsSession: d.tlsSession ?? undefined, logger: logger.child('pop3'), signal: d.signal, serverNotes: d.serverNotes,
  });
  let quitOk = false;
  try {
    // STAT and the short-circuit's `UIDL n` (n = last poll's count) go out together right after the login's reply.
    const lastCount = state.data.serverUids.length;
    const { stat, probeUid } = await client.loginAndStat({
      username: target.username, password: target.password,
      accessToken: target.accessToken ? await target.accessToken() : undefined,
      mechanism: target.auth, allowInsecureAuth: target.allowInsecureAuth,
      // The pre-login CAPA already says whether TOP, UIDL and PIPELINING are there; a second CAPA costs bytes every poll.
      capaAfterLogin: false,
    }, lastCount > 0 && target.fastUidl && client.capabilities?.has('UIDL') !== false ? lastCount : undefined);
    result.messages = stat.count;
    result.octets = stat.size;

    const sync = await syncUids(client, state, stat, {
      fast: target.fastUidl, hasUnfinished: hasUnfinishedWork(d), logger,
      prefetched: probeUid !== undefined ? { msg: lastCount, uid: probeUid } : undefined,
    });
    if (sync.unchanged) {
      result.shortCircuit = true;
      await client.quit();
      quitOk = true;
      return result;
    }
    const uidByMsg = sync.uidByMsg;

    if (d.firstRun && target.existing === 'skip') {
      for (const uid of uidByMsg.values()) state.markDone(uid);
      await state.flush();
      logger.info('first run: existing mail marked as seen without alerts (existing: skip)', { messages: uidByMsg.size });
    } else {
      await processNewMessages(d, client, uidByMsg, result);
    }

    // Deletions: only messages whose alerts were all acknowledged (state.deletePending), in this same session.
    const toDelete: Array<[number, string]> = [];
    const pendingDel = new Set(state.data.deletePending);
    for (const [msg, uid] of uidByMsg) if (pendingDel.has(uid)) toDelete.push([msg, uid]);
    const deleted: string[] = [];
    if (toDelete.length) {
      const res = await client.deleMany(toDelete.map(([m]) => m));
      for (const [msg, uid] of toDelete) {
        const err = res.get(msg);
        if (err) logger.warn('DELE refused; will retry next poll', { uid, error: err.message });
        else deleted.push(uid);
      }
    }
    await client.quit();
    quitOk = true;
    if (deleted.length) {
      state.confirmDeleted(deleted);
      result.deleted = deleted.length;
    }
    return result;
  } finally {
    if (!quitOk) client.destroy();
    if (client.tlsSession && d.onTlsSession) d.onTlsSession(client.tlsSession);
    result.bytesIn = client.stats.bytesIn;
    result.bytesOut = client.stats.bytesOut;
    result.durationMs = Date.now() - t0;
    state.addBytes(result.bytesIn);
    await state.flush().catch((err) => logger.error('saving state failed', { error: (err as Error).message }));
  }
}

function hasUnfinished(d: PollDeps, uid: string): boolean {
  return !d.state.isDone(uid) && (d.state.data.failures[uid] ?? 0) < MAX_ATTEMPTS;
}

function hasUnfinishedWork(d: PollDeps): boolean {
  if (d.state.data.deletePending.length) return true;
  return d.state.data.serverUids.some((uid) => hasUnfinished(d, uid) && !d.outbox.pendingFor(d.target.id).some((e) => e.uid === uid));
}

async function processNewMessages(d: PollDeps, client: Pop3Client, uidByMsg: Map<number, string>, result: PollResult): Promise<void> {
  const { state, logger, outbox } = d;
  const queued = new Set(outbox.pendingFor(d.target.id).map((e) => e.uid));
  const fresh: Array<[number, string]> = [];
  for (const [msg, uid] of uidByMsg) {
    if (state.isDone(uid) || queued.has(uid)) continue;
    const fails = state.data.failures[uid] ?? 0;
    if (fails >= MAX_ATTEMPTS) continue;
    fresh.push([msg, uid]);
  }
  fresh.sort((a, b) => a[0] - b[0]);
  result.newMessages = fresh.length;
  if (!fresh.length) return;
  await loadHeaderDecoder();

  // LIST sizes up front only when a rule has a size condition; otherwise they are asked for (LIST n, pipelined) just
  // for the messages about to be retrieved or alerted: a header-only first poll then costs little beyond TOP n 0.
  const sizes = d.ruleSet.usesListSize ? await listSizes(client, fresh.map(([m]) => m), uidByMsg.size) : null;
  const batchSize = d.batchSize ?? 200;
  const progressEvery = d.progressEveryMs ?? 5000;
  let lastProgress = Date.now();
  let previewed = 0;
  for (let i = 0; i < fresh.length; i += batchSize) {
    if (d.signal?.aborted) throw new Pop3Error('EABORTED', 'poll aborted');
    if (!outbox.hasRoom()) {
      result.deferred += fresh.length - i;
      logger.warn('outbox full: stopping this poll; the rest waits for the broker', { left: fresh.length - i, outbox: outbox.size });
      break;
    }
    const batch = fresh.slice(i, i + batchSize);
    const datas = batch.map(([msg, uid]) => ({ mailbox: d.target.id, uid, msgNum: msg, size: sizes?.get(msg) ?? NaN }) as MessageData);
    await evaluateStaged(d, client, datas, result, () => {
      previewed++;
      if (Date.now() - lastProgress >= progressEvery) {
        lastProgress = Date.now();
        logger.info('progress', { previewed: `${previewed}/${fresh.length}` });
      }
    });
    await state.flush();
  }
}

/** Fill in LIST sizes not yet known (NaN): pipelined `LIST n`, or one full LIST when that is fewer bytes. */
async function ensureSizes(client: Pop3Client, datas: MessageData[], total: number): Promise<void> {
  const missing = datas.filter((m) => Number.isNaN(m.size));
  if (!missing.length) return;
  const sizes = await listSizes(client, missing.map((m) => m.msgNum), total);
  for (const m of missing) m.size = sizes.get(m.msgNum) ?? 0;
}

async function listSizes(client: Pop3Client, msgs: number[], total: number): Promise<Map<number, number>> {
  // `LIST n` costs about 2.5 times a line of the full LIST (command plus status line): one full LIST is cheaper
  // when more than about 40 % of the mailbox is wanted.
  if (msgs.length * 5 >= total * 2) return client.list();
  const sizes = new Map<number, number>();
  const res = await Promise.all(msgs.map((m) => client.list(m)));
  msgs.forEach((m, i) => {
    const v = res[i];
    if (typeof v === 'number') sizes.set(m, v);
  });
  return sizes;
}

type Evaluated = { data: MessageData; matches: RuleMatch[]; failed: boolean; queued?: boolean };

async function evaluateStaged(d: PollDeps, client: Pop3Client, datas: MessageData[], result: PollResult, onPreviewed: () => void): Promise<void> {
  const { ruleSet, state, logger } = d;
  const items: Evaluated[] = datas.map((data) => ({ data, matches: [], failed: false }));
  const open = () => items.filter((it) => !it.failed && !ruleSet.evaluate(it.data).decided);
  const fail = (it: Evaluated, why: string) => {
    it.failed = true;
    const n = state.recordFailure(it.data.uid);
    result.failed++;
    if (n >= MAX_ATTEMPTS) logger.error('giving up on a message after repeated failures; it stays on the server for a person', { uid: it.data.uid, attempts: n, error: why });
    else logger.warn('message could not be handled; retrying next poll', { uid: it.data.uid, attempt: n, error: why });
  };

  // A reply that breaks a size limit (a line too long, a header block or TOP reply too large) is read to its end and
  // dropped by the client: only that message fails (ELIMIT) and the session goes on. The breach is in the message
  // itself and does not go away, so the message is parked at once: it stays on the server for a person, never
  // deleted. Any other per-message failure is retried at the next poll, up to MAX_ATTEMPTS.
  const failMessage = (it: Evaluated, err: unknown) => {
    if (err instanceof Pop3Error && err.code === 'ELIMIT') state.data.failures[it.data.uid] = Math.max(state.data.failures[it.data.uid] ?? 0, MAX_ATTEMPTS - 1);
    fail(it, err instanceof Pop3Error ? `${err.code}: ${err.message}` : (err as Error).message);
  };
  // A fatal session error caused by a reply (malformed, a status line over the limits) is charged to the message
  // being read, so one poisonous message is parked after a few polls instead of blocking the mailbox.
  const charge = (it: Evaluated, err: unknown) => {
    // Only errors the message itself can cause; a cut, a timeout or a slow link is the network's fault, not the message's.
    if (!(err instanceof Pop3Error) || !client.fatalError || !['ELIMIT', 'EPROTOCOL'].includes(err.code)) return;
    failMessage(it, err);
  };
  const fetchTops = async (need: Evaluated[], lines: number, use: (it: Evaluated, buf: Buffer) => void) => {
    // Each reply is parsed as it completes and dropped: memory holds one TOP reply, not the batch.
    const byMsg = new Map(need.map((it) => [it.data.msgNum, it]));
    const done = new Set<number>();
    try {
      await client.topEach([...byMsg.keys()], lines, (msg, r) => {
        done.add(msg);
        const it = byMsg.get(msg)!;
        if (r instanceof Error) {
          failMessage(it, r);
          return;
        }
        try {
          use(it, r);
        } catch (err) {
          fail(it, (err as Error).message);
        }
      }, { maxBytes: lines === 0 ? HEADER_TOP_CAP : HEADER_TOP_CAP + PREVIEW_TOP_BYTES });
    } catch (err) {
      const culprit = need.find((it) => !done.has(it.data.msgNum));
      if (culprit) charge(culprit, err);
      throw err;
    }
    result.topFetches += need.length;
  };

  // Stage 1: headers with TOP n 0, pipelined.
  let need = open().filter((it) => needsStage(ruleSet, it.data, 'headers'));
  if (need.length) {
    await fetchTops(need, 0, (it, buf) => {
      onPreviewed();
      it.data.headers = parseHeaders(buf);
    });
  }
  // Stage 2: preview lines with TOP n N.
  need = open().filter((it) => needsStage(ruleSet, it.data, 'preview'));
  if (need.length) {
    const lines = ruleSet.maxPreviewLines;
    await fetchTops(need, lines, (it, buf) => {
      const split = splitHeaderBody(buf);
      it.data.headers ??= parseHeaders(split.header);
      it.data.preview = { lines, text: split.body.toString('utf8') };
    });
  }
  // Alerts: queue publications on disk; the acknowledgements are awaited (bounded) at the end of the batch.
  const waitKeys: string[] = [];
  /** With `sink`, the items are collected there for one enqueue of the whole batch (the caller enqueues them). */
  const queueAlerts = async (it: Evaluated, sink?: OutboxItem[]): Promise<void> => {
    if (it.failed || it.queued) return;
    it.queued = true;
    const ev = ruleSet.evaluate(it.data);
    if (!ev.decided) {
      fail(it, 'rules still undecided after every fetch stage');
      return;
    }
    const now = new Date();
    const { matched, refused } = await admitCommands(ev, it.data, state, now, logger); // command mails: replay gate
    const toQueue: OutboxItem[] = [];
    const keys: string[] = [];
    let deleteAfter = matched.length > 0 && !refused;
    let rateLimited = false;
    const acked = state.ackedAlerts(it.data.uid);
    for (const m of matched) {
      const rule = m.rule;
      const then = rule.then ?? (d.target.keep ? 'keep' : 'delete');
      if (then !== 'delete') deleteAfter = false;
      const gate = d.rateLimiter.take(rule, now);
      if (!gate.allowed) {
        rateLimited = true;
        logger.info('rate limit: alert suppressed', { rule: rule.name, uid: it.data.uid });
        continue;
      }
      const pubs = buildPublications(m, it.data, { baseTopic: d.baseTopic, suppressed: gate.suppressed || undefined, now });
      if (d.extraPublications) pubs.push(...d.extraPublications(m, it.data, pubs));
      pubs.forEach((p, idx) => {
        const key = `${p.alertId}#${idx}`;
        keys.push(key);
        if (acked.has(key)) return;
        toQueue.push({
          key, mailbox: d.target.id, uid: it.data.uid, messageKeys: [], deleteAfter: false,
          topic: p.topic, qos: p.qos, retain: p.retain, userProperties: p.properties?.userProperties, payload: p.payload,
        });
      });
    }
    if (!keys.length) {
      // No rule matched, or the matched rules publish nothing (a `then: delete` clean-up rule), or every alert was
      // rate-limited. Only the clean-up case may delete: nothing is deleted in place of an alert that was not sent.
      state.markDone(it.data.uid, { deleteOnServer: deleteAfter && !rateLimited });
      return;
    }
    for (const q of toQueue) {
      q.messageKeys = keys;
      q.deleteAfter = deleteAfter;
    }
    result.alerts += toQueue.length ? matched.length : 0;
    if (!toQueue.length) {
      state.markDone(it.data.uid, { deleteOnServer: deleteAfter });
      return;
    }
    if (sink) sink.push(...toQueue);
    else await d.outbox.enqueue(toQueue);
    waitKeys.push(...toQueue.map((q) => q.key));
  };

  // Stage 3: the whole message with RETR, one at a time (streamed), unless it is over the size guard.
  need = open().filter((it) => needsStage(ruleSet, it.data, 'full'));
  await ensureSizes(client, need.map((it) => it.data), result.messages);
  for (const it of need) {
    if (it.data.size > d.target.maxMessageSize) {
      it.data.oversize = true;
      logger.info('message over max_message_size: not retrieved; rules see oversize', { uid: it.data.uid, size: it.data.size });
      continue;
    }
    try {
      it.data.full = await fetchFull(client, it.data.msgNum, d.target.maxMessageSize, ruleSet);
      it.data.headers ??= it.data.full.headers;
      result.retrFetches++;
      if (it.data.full.limitsExceeded.length) {
        result.limitsExceeded++;
        logger.warn('message exceeds MIME limits; rules see what was parsed within them', { uid: it.data.uid, limits: it.data.full.limitsExceeded.join(',') });
      }
      // Build and queue this message's alerts now, then let its body and attachments go: memory holds one
      // downloaded message at a time, not a batch of them.
      if (ruleSet.evaluate(it.data).decided) {
        await queueAlerts(it);
        it.data.full = undefined;
      }
    } catch (err) {
      if (client.fatalError) {
        charge(it, err);
        throw err;
      }
      failMessage(it, err); // -ERR, a size cap, or MIME the parser refused: the session goes on
    }
  }

  await ensureSizes(client, items.filter((it) => !it.failed && !it.queued && ruleSet.evaluate(it.data).matched.length > 0).map((it) => it.data), result.messages);
  // The remaining alerts (decided without a download) go to the outbox together: their files are written at once
  // and the broker gets them in one window, so their acknowledgements cost one or two state writes, not one each.
  // Nothing is published before its file is on disk; a crash before this enqueue leaves these messages not done,
  // so the next poll alerts them again.
  const batchItems: OutboxItem[] = [];
  for (const it of items) await queueAlerts(it, batchItems);
  await d.outbox.enqueue(batchItems);
  await state.flush();
  if (waitKeys.length) {
    const left = await d.outbox.waitFor(waitKeys, d.ackTimeoutMs, d.signal);
    if (left.length) {
      const uids = new Set(items.filter((it) => !state.isDone(it.data.uid)).map((it) => it.data.uid));
      result.deferred += uids.size;
      logger.warn('broker has not acknowledged every alert yet; they stay in the outbox', { pending: left.length });
    }
  }
}

function needsStage(ruleSet: RuleSet, data: MessageData, stage: 'headers' | 'preview' | 'full'): boolean {
  const ev = ruleSet.evaluate(data);
  if (ev.decided) return false;
  const needs = ev.pending.map((p) => p.needs);
  if (stage === 'headers') return !data.headers && needs.some((n) => n === 'headers');
  if (stage === 'preview') return !data.preview && needs.some((n) => typeof n === 'object');
  return !data.full && !data.oversize && needs.some((n) => n === 'full');
}
