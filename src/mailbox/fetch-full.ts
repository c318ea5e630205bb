// RETR of one message, streamed from the POP3 client straight into the MIME parser, so memory does not grow with message size.
import type { Pop3Client } from '../pop3/index.js';
import { parseMessage, type ParsedMessage } from '../message/body.js';

export async function fetchFull(client: Pop3Client, msg: number, maxBytes: number): Promise<ParsedMessage> {
  const stream = await client.retrStream(msg, { maxBytes });
  return parseMessage(stream);
}
