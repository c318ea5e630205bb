// RETR of one message, streamed from the POP3 client straight into the MIME parser, so memory does not grow with message size.
import type { Pop3Client } from '../pop3/index.js';
import type { RuleSet } from '../rules/index.js';
import type { ParsedMessage } from '../message/body.js';

/** Only attachments some rule publishes keep their bytes (one message at a time); the rest are hashed and counted. */
export async function fetchFull(client: Pop3Client, msg: number, maxBytes: number, ruleSet: RuleSet): Promise<ParsedMessage> {
  // The MIME parser (mailparser, iconv tables, html-to-text) is loaded at the first RETR only: header-only
  // deployments never carry it in memory.
  const { parseMessage } = await import('../message/body.js');
  const stream = await client.retrStream(msg, { maxBytes });
  return parseMessage(stream, { keepAttachment: (a) => ruleSet.wantsAttachment(a) });
}
