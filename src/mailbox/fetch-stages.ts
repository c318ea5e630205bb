// The fetch step of a poll: the stage the planner picked for a batch, as pipelined TOP n 0 / TOP n N or streamed RETR (within max_message_size), and LIST sizes on demand.
import type { Logger } from '../log.js';
import type { Pop3Client } from '../pop3/index.js';
import type { MessageData, RuleSet } from '../rules/index.js';
import type { FetchStage } from '../rules/stage-planner.js';
import { loadHeaderDecoder, mayNeedHeaderDecoder, parseHeaders } from '../message/headers.js';
import { splitHeaderBody } from '../message/preview.js';
import { HEADER_TOP_CAP } from './uid-sync.js';
import { fetchFull } from './fetch-full.js';
import { downloadReleased } from '../body-gc.js';
import type { BatchItem, MessageFailures } from './message-failures.js';

/** Room for the body lines of a `TOP n N` preview, on top of the header block: a larger reply fails that message. */
const PREVIEW_TOP_BYTES = 1024 * 1024;

/** The poll's counters the fetches add to. */
export interface FetchCounts {
  topFetches: number;
  retrFetches: number;
  /** Messages whose MIME structure broke a parser limit (parts, depth, attachments, sizes). */
  limitsExceeded: number;
}

export interface StageFetchDeps {
  client: Pop3Client;
  ruleSet: RuleSet;
  maxMessageSize: number;
  failures: MessageFailures;
  logger: Logger;
  counts: FetchCounts;
  /** Messages on the server (STAT): decides between `LIST n` and one full LIST. */
  total: number;
  /** Called for each header block read with TOP n 0 (the progress of a long first poll). */
  onHeaders?: () => void;
}

/** Adds a stage's data to the messages that need it; a message whose fetch fails is failed alone and the session goes on. */
export class StageFetcher {
  constructor(private readonly d: StageFetchDeps) {}

  /** Headers with TOP n 0, or headers and preview lines with TOP n N: pipelined, each reply parsed as it completes and dropped. */
  async tops(need: BatchItem[], stage: Exclude<FetchStage, 'full'>): Promise<void> {
    const { client, failures } = this.d;
    const lines = stage === 'headers' ? 0 : this.d.ruleSet.maxPreviewLines;
    const byMsg = new Map(need.map((it) => [it.data.msgNum, it]));
    const done = new Set<number>();
    let encodedWords = false;
    try {
      await client.topEach([...byMsg.keys()], lines, (msg, r) => {
        done.add(msg);
        const it = byMsg.get(msg)!;
        if (r instanceof Error) {
          failures.failMessage(it, r);
          return;
        }
        encodedWords ||= mayNeedHeaderDecoder(r);
        try {
          if (stage === 'headers') {
            this.d.onHeaders?.();
            it.data.headers = parseHeaders(r);
          } else {
            const split = splitHeaderBody(r);
            it.data.headers ??= parseHeaders(split.header);
            it.data.preview = { lines, text: split.body.toString('utf8') };
          }
        } catch (err) {
          failures.fail(it, (err as Error).message);
        }
      }, { maxBytes: lines === 0 ? HEADER_TOP_CAP : HEADER_TOP_CAP + PREVIEW_TOP_BYTES });
    } catch (err) {
      const culprit = need.find((it) => !done.has(it.data.msgNum));
      if (culprit) failures.charge(culprit, err);
      throw err;
    }
    // Parsing decoded nothing; the rules and alerts read decoded values next.
    if (encodedWords) await loadHeaderDecoder();
    this.d.counts.topFetches += need.length;
  }

  /**
   * The whole message with RETR, one at a time (streamed), unless it is over max_message_size (rules then see
   * oversize). `retrieved` runs after each download, so the caller can queue its alerts and let the body go: memory
   * holds one downloaded message at a time, not a batch of them.
   */
  async retrieve(need: BatchItem[], retrieved: (it: BatchItem) => Promise<void>): Promise<void> {
    const { client, ruleSet, logger, failures, counts, maxMessageSize } = this.d;
    await this.ensureSizes(need.map((it) => it.data));
    for (const it of need) {
      if (it.data.size > maxMessageSize) {
        it.data.oversize = true;
        logger.info('message over max_message_size: not retrieved; rules see oversize', { uid: it.data.uid, size: it.data.size });
        continue;
      }
      try {
        it.data.full = await fetchFull(client, it.data.msgNum, maxMessageSize, ruleSet);
        it.data.headers ??= it.data.full.headers;
        counts.retrFetches++;
        if (it.data.full.limitsExceeded.length) {
          counts.limitsExceeded++;
          logger.warn('message exceeds MIME limits; rules see what was parsed within them', { uid: it.data.uid, limits: it.data.full.limitsExceeded.join(',') });
        }
        await retrieved(it);
        await downloadReleased(); // its buffers are garbage now: collected once they add up (body-gc.ts)
      } catch (err) {
        if (client.fatalError) {
          failures.charge(it, err);
          throw err;
        }
        failures.failMessage(it, err); // -ERR, a size cap, or MIME the parser refused: the session goes on
      }
    }
  }

  /** Fill in LIST sizes not yet known (NaN). */
  async ensureSizes(datas: MessageData[]): Promise<void> {
    const missing = datas.filter((m) => Number.isNaN(m.size));
    if (!missing.length) return;
    const sizes = await listSizes(this.d.client, missing.map((m) => m.msgNum), this.d.total);
    for (const m of missing) m.size = sizes.get(m.msgNum) ?? 0;
  }
}

/** LIST sizes of `msgs`: pipelined `LIST n`, or one full LIST when that is fewer bytes. */
export async function listSizes(client: Pop3Client, msgs: number[], total: number): Promise<Map<number, number>> {
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
