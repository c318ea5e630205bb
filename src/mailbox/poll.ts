// One poll of one mailbox: sync UIDs with the saved state, fetch the cheapest stage each rule needs, queue alerts, DELE after acks.
import type { Logger } from '../log.js';
import { Pop3Client, Pop3Error, type Pop3Memory } from '../pop3/index.js';
import type { RuleSet, MessageData } from '../rules/index.js';
import type { RateLimiter } from '../rules/rate-limit.js';
import { fetchInStages } from '../rules/stage-planner.js';
import { newMessagesSeen } from '../compiler-tiers.js';
import { AlertQueue, type ExtraPublications } from '../alerts/queue.js';
import { AckWait } from '../alerts/ack-wait.js';
import type { Outbox } from '../alerts/outbox.js';
import type { MailboxState } from '../state/mailbox-state.js';
import { syncUids } from './uid-sync.js';
import { clientOptionsOf, type PollTarget } from './target.js';
import { MessageFailures, hasAttemptsLeft, type BatchItem } from './message-failures.js';
import { StageFetcher, listSizes } from './fetch-stages.js';
import { deleteAcknowledged } from './delete-acknowledged.js';

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
  /** What the agent's POP3 sessions remember between polls (TLS sessions and their CAPA, server notes); none: a fresh one. */
  memory?: Pop3Memory;
  /** Extra publications per match (Home Assistant event and image topics), queued with the rule's own. */
  extraPublications?: ExtraPublications;
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
  /**
   * ms after QUIT writing the last alerts to the outbox and waiting for their acks, when no message is deleted on them
   * (else both are awaited before DELE, inside durationMs, the POP3 session).
   */
  ackWaitMs?: number;
}

/**
 * One poll, in the order of the data flow: log in and STAT, sync UIDs (stop here when nothing changed), then per
 * batch of new messages plan stages → fetch → evaluate → queue alerts, wait for the acks of all, and last DELE what the
 * broker acknowledged, in this same session. When nothing is deleted on these acks, they are awaited after QUIT.
 */
export async function pollMailbox(d: PollDeps): Promise<PollResult> {
  const result: PollResult = {
    mailbox: d.target.id, messages: 0, octets: 0, newMessages: 0, alerts: 0, deleted: 0, failed: 0,
    bytesIn: 0, bytesOut: 0, durationMs: 0, shortCircuit: false, topFetches: 0, retrFetches: 0, deferred: 0, limitsExceeded: 0,
  };
  const acks = await pollSession(d, result);
  if (acks?.pending) {
    const t = Date.now();
    result.deferred += await acks.wait();
    result.ackWaitMs = Date.now() - t;
  }
  return result;
}

/** The POP3 session of a poll (durationMs); returns the acks still to wait for when no DELE depends on them. */
async function pollSession(d: PollDeps, result: PollResult): Promise<AckWait | undefined> {
  const t0 = Date.now();
  const { target, state, logger } = d;
  const client = await Pop3Client.connect({
    ...clientOptionsOf(target), tlsSession: d.tlsSession ?? undefined, logger: logger.child('pop3'), signal: d.signal, memory: d.memory,
  });
  let quitOk = false;
  let acks: AckWait | undefined;
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
      return undefined;
    }

    if (d.firstRun && target.existing === 'skip') {
      for (const uid of sync.uidByMsg.values()) state.markDone(uid);
      await state.flush();
      logger.info('first run: existing mail marked as seen without alerts (existing: skip)', { messages: sync.uidByMsg.size });
    } else {
      acks = await processNewMessages(d, client, sync.uidByMsg, result);
    }

    const deleted = await deleteAcknowledged(d, client, sync.uidByMsg);
    await client.quit();
    quitOk = true;
    if (deleted.length) {
      state.confirmDeleted(deleted);
      result.deleted = deleted.length;
    }
    return acks;
  } catch (err) {
    await acks?.written().catch(() => {}); // no write left running behind a failed poll
    throw err;
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

function hasUnfinishedWork(d: PollDeps): boolean {
  if (d.state.data.deletePending.length) return true;
  return d.state.data.serverUids.some((uid) => !d.state.isDone(uid) && hasAttemptsLeft(d.state, uid) && !d.outbox.pendingFor(d.target.id).some((e) => e.uid === uid));
}

/** The messages not done, not waiting in the outbox and not parked, in server order, evaluated in batches; returns their acks. */
async function processNewMessages(d: PollDeps, client: Pop3Client, uidByMsg: Map<number, string>, result: PollResult): Promise<AckWait | undefined> {
  const { state, logger, outbox } = d;
  const queued = new Set(outbox.pendingFor(d.target.id).map((e) => e.uid));
  const fresh: Array<[number, string]> = [];
  for (const [msg, uid] of uidByMsg) {
    if (state.isDone(uid) || queued.has(uid) || !hasAttemptsLeft(state, uid)) continue;
    fresh.push([msg, uid]);
  }
  fresh.sort((a, b) => a[0] - b[0]);
  result.newMessages = fresh.length;
  if (!fresh.length) return undefined;
  newMessagesSeen(fresh.length); // enough work: V8 may optimize from here on (compiler-tiers.ts)

  // LIST sizes up front only when a rule has a size condition; otherwise they are asked for (LIST n, pipelined) just
  // for the messages about to be retrieved or alerted: a header-only first poll then costs little beyond TOP n 0.
  const sizes = d.ruleSet.usesListSize ? await listSizes(client, fresh.map(([m]) => m), uidByMsg.size) : null;
  const batchSize = d.batchSize ?? 200;
  const progressEvery = d.progressEveryMs ?? 5000;
  let lastProgress = Date.now();
  let previewed = 0;
  const onHeaders = () => {
    previewed++;
    if (Date.now() - lastProgress >= progressEvery) {
      lastProgress = Date.now();
      logger.info('progress', { previewed: `${previewed}/${fresh.length}` });
    }
  };
  // A batch's outbox files and state save run while the next batches are fetched, in batch order; nothing is
  // published before its file is on disk. They and the broker's acks are awaited (bounded) once, after the last batch
  // (before DELE when a message is to be deleted, else after QUIT), or before a batch when the outbox may be full.
  const acks = new AckWait({ state, outbox, logger, timeoutMs: d.ackTimeoutMs, signal: d.signal });
  try {
    for (let i = 0; i < fresh.length; i += batchSize) {
      if (d.signal?.aborted) throw new Pop3Error('EABORTED', 'poll aborted');
      if (!acks.hasRoom()) result.deferred += await acks.wait(); // throws when a write failed
      if (!outbox.hasRoom()) {
        result.deferred += fresh.length - i;
        logger.warn('outbox full: stopping this poll; the rest waits for the broker', { left: fresh.length - i, outbox: outbox.size });
        break;
      }
      const batch = fresh.slice(i, i + batchSize);
      const datas = batch.map(([msg, uid]) => ({ mailbox: d.target.id, uid, msgNum: msg, size: sizes?.get(msg) ?? NaN }) as MessageData);
      acks.add(await evaluateBatch(d, client, datas, result, onHeaders), () => state.flush());
    }
  } catch (err) {
    await acks.written().catch(() => {}); // no write left running behind a failed poll
    throw err;
  }
  result.deferred += await acks.waitForDele(); // DELE needs them; otherwise they are awaited after QUIT
  return acks;
}

/** One batch: plan stages → fetch → evaluate → queue alerts; returns its alerts (the caller writes them to the outbox and awaits their acks) and its messages. */
async function evaluateBatch(d: PollDeps, client: Pop3Client, datas: MessageData[], result: PollResult, onHeaders: () => void): Promise<{ alerts: AlertQueue; uids: string[] }> {
  const { ruleSet, state, logger } = d;
  const items: BatchItem[] = datas.map((data) => ({ data, failed: false }));
  const failures = new MessageFailures(state, logger, result, () => client.fatalError);
  const fetcher = new StageFetcher({ client, ruleSet, maxMessageSize: d.target.maxMessageSize, failures, logger, counts: result, total: result.messages, onHeaders });
  const alerts = new AlertQueue({
    mailbox: d.target.id, keep: d.target.keep, baseTopic: d.baseTopic, state, outbox: d.outbox, rateLimiter: d.rateLimiter, logger,
    extraPublications: d.extraPublications,
  });
  const queueAlerts = async (it: BatchItem, when: 'now' | 'together'): Promise<void> => {
    if (it.failed || it.queued) return;
    it.queued = true;
    const ev = ruleSet.evaluate(it.data);
    if (!ev.decided) return failures.fail(it, 'rules still undecided after every fetch stage');
    result.alerts += await alerts.add(it.data, ev, when);
  };
  // A message decided by its download has its alerts queued at once, then its body and attachments are let go.
  const queueDownloaded = async (it: BatchItem): Promise<void> => {
    if (!ruleSet.evaluate(it.data).decided) return;
    await queueAlerts(it, 'now');
    it.data.full = undefined;
  };

  // Plan stages → fetch: the planner hands each stage (TOP n 0, TOP n N, RETR) the messages whose rules still need it.
  await fetchInStages(ruleSet, items, { data: (it) => it.data, skip: (it) => it.failed }, (stage, need) =>
    stage === 'full' ? fetcher.retrieve(need, queueDownloaded) : fetcher.tops(need, stage));
  // Evaluate → queue alerts: the messages decided without a download go to the outbox together.
  await fetcher.ensureSizes(items.filter((it) => !it.failed && !it.queued && ruleSet.evaluate(it.data).matched.length > 0).map((it) => it.data));
  for (const it of items) await queueAlerts(it, 'together');
  return { alerts, uids: items.map((it) => it.data.uid) };
}
