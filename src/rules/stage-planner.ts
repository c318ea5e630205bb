// The stage planner: which fetch (TOP n 0 headers, TOP n N preview, RETR) the rules still need for a message, and the staged loop over them, shared by the poller and test-rule's explanation.
import type { RuleSet } from './engine.js';
import type { MessageData } from './types.js';

/** The fetches that add data to a message, cheapest first (LIST size and UIDL come before any of them). */
export type FetchStage = 'headers' | 'preview' | 'full';
export const FETCH_STAGES: readonly FetchStage[] = ['headers', 'preview', 'full'];

/** Whether the rules, still undecided on `data`, need `stage`, and `data` does not hold it yet. */
export function needsStage(ruleSet: RuleSet, data: MessageData, stage: FetchStage, now?: Date): boolean {
  if (stage === 'headers' ? data.headers : stage === 'preview' ? data.preview : data.full || data.oversize) return false;
  const ev = ruleSet.evaluate(data, now);
  if (ev.decided) return false;
  for (const p of ev.pending) {
    if (stage === 'preview' ? typeof p.needs === 'object' : p.needs === stage) return true;
  }
  return false;
}

export interface StagedOptions<T> {
  /** The message data of an item: `fetch` adds the stage's data to it. */
  data: (item: T) => MessageData;
  /** Items left out of later stages (e.g. a message whose fetch failed). */
  skip?: (item: T) => boolean;
  /** Evaluate at this time (test-rule); without it the rule set's cached evaluation is used. */
  now?: Date;
}

/**
 * The staged loop: for each stage, cheapest first, hand `fetch` the items whose rules still need it; `fetch` adds that
 * stage's data (or fails the item). Each stage runs at most once, in order: a later stage brings everything an earlier
 * one would, so no message ever goes back to a cheaper fetch.
 */
export async function fetchInStages<T>(ruleSet: RuleSet, items: readonly T[], o: StagedOptions<T>, fetch: (stage: FetchStage, need: T[]) => Promise<void>): Promise<void> {
  for (const stage of FETCH_STAGES) {
    const need = items.filter((it) => !o.skip?.(it) && needsStage(ruleSet, o.data(it), stage, o.now));
    if (need.length) await fetch(stage, need);
  }
}
