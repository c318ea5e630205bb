// The replay gate of command mails, at queue time: an action rule acts at most once per Message-ID (remembered in the mailbox state across restarts); every refusal is logged with its reason.
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import { commandMessageId, type Evaluation, type MessageData, type RuleMatch } from '../rules/index.js';
import type { MailboxState } from '../state/mailbox-state.js';

/** The replay-memory key of a rule and a Message-ID: fixed size, case and surrounding space ignored. */
export function commandKey(rule: string, messageId: string): string {
  return createHash('sha256').update(`${rule}\n${messageId.trim().toLowerCase()}`).digest('hex').slice(0, 32);
}

export interface Admitted {
  /** The matches to publish: every non-action match, and the action matches allowed to act. */
  matched: RuleMatch[];
  /** Some action rule's command was refused (stale Date, replay, ...): the mail must not be deleted. */
  refused: boolean;
}

/**
 * Filter an evaluation's matches before their alerts are queued. Action matches are claimed in the replay memory
 * and the state is saved BEFORE anything is published, so a crash between publishing and saving can never let a copy
 * act again. A refused command is logged (warn) and leaves the mail on the server, done but not acted on.
 */
export async function admitCommands(ev: Evaluation, data: MessageData, state: MailboxState, now: Date, logger: Logger): Promise<Admitted> {
  const refuse = (rule: string, reason: string) => logger.warn('command mail not acted on', { rule, uid: data.uid, reason });
  for (const r of ev.refused) refuse(r.rule, r.reason);
  let refused = ev.refused.length > 0;
  let claimed = false;
  const matched: RuleMatch[] = [];
  const headers = data.headers ?? data.full?.headers;
  for (const m of ev.matched) {
    const guard = m.rule.command;
    if (!guard) {
      matched.push(m);
      continue;
    }
    const id = headers ? commandMessageId(headers) : undefined;
    if (id === undefined) {
      refused = true; // the engine refuses this already; never act without a key to remember
      refuse(m.rule.name, 'no Message-ID header');
      continue;
    }
    const claim = state.claimCommand(commandKey(m.rule.name, id), data.uid, now.getTime(), {
      forgetAfterMs: guard.replayWindowMs,
      evictableAfterMs: guard.maxAgeMs + guard.maxFutureMs,
    });
    if (claim === 'claimed' || claim === 'again') {
      claimed ||= claim === 'claimed';
      matched.push(m);
      continue;
    }
    refused = true;
    if (claim === 'replay') refuse(m.rule.name, `replay: this rule already acted on a mail with Message-ID ${id.slice(0, 200)}`);
    else logger.error('command mail not acted on', { rule: m.rule.name, uid: data.uid, reason: 'the replay memory is full of commands younger than max_age + max_future' });
  }
  if (claimed) await state.flush();
  return { matched, refused };
}
