// Parsing of `bridge/request/<cmd>` payloads and the response envelope; pure, so malformed input is tested without a broker.

export const BRIDGE_COMMANDS = ['poll', 'reload', 'status', 'test_rule'] as const;

/**
 * Largest request payload handled (1 MiB): a test_rule message above it is refused unparsed. With MQTT 5 the
 * broker is told not to send the agent anything bigger (CONNECT maximumPacketSize), so it never reaches memory.
 */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** The CONNECT maximumPacketSize (MQTT 5): a largest request plus room for the topic and properties. */
export const MAX_INCOMING_PACKET_BYTES = MAX_REQUEST_BYTES + 64 * 1024;

/** The refusal of an oversized request; says what was done with it (nothing). */
export function tooLargeError(bytes: number): string {
  return `request too large: ${bytes} bytes, the limit is ${MAX_REQUEST_BYTES} bytes (1 MiB); it was not parsed`;
}
export type BridgeCommand = (typeof BRIDGE_COMMANDS)[number];

export function isBridgeCommand(cmd: string): cmd is BridgeCommand {
  return (BRIDGE_COMMANDS as readonly string[]).includes(cmd);
}

export type ParsedRequest =
  | { ok: true; cmd: 'poll'; mailbox?: string; transaction?: unknown }
  | { ok: true; cmd: 'reload' | 'status'; transaction?: unknown }
  | { ok: true; cmd: 'test_rule'; message: Buffer; transaction?: unknown }
  | { ok: false; error: string; transaction?: unknown };

export interface BridgeResponse {
  status: 'ok' | 'error';
  data: unknown;
  error?: string;
  transaction?: unknown;
}

/** Parses the payload of one request. Never throws: malformed input gives `{ok: false, error}`. */
export function parseRequest(cmd: BridgeCommand, payload: Buffer): ParsedRequest {
  if (cmd === 'test_rule') return parseTestRule(payload);
  const text = payload.toString('utf8').trim();
  if (text === '') return { ok: true, cmd } as ParsedRequest;
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return { ok: false, error: parsed.error };
  const obj = parsed.value;
  const transaction = obj.transaction;
  if (cmd === 'poll') {
    const mailbox = obj.mailbox;
    if (mailbox !== undefined && (typeof mailbox !== 'string' || mailbox === '')) {
      return { ok: false, error: 'mailbox must be a non-empty string', transaction };
    }
    return { ok: true, cmd, mailbox, transaction };
  }
  return { ok: true, cmd, transaction };
}

function parseTestRule(payload: Buffer): ParsedRequest {
  // A raw RFC 822 message never starts with "{"; a payload that does must be the JSON form.
  let i = 0;
  while (i < payload.length && (payload[i] === 0x20 || payload[i] === 0x09 || payload[i] === 0x0d || payload[i] === 0x0a)) i++;
  if (i >= payload.length) return { ok: false, error: 'empty message: send a raw RFC 822 message or {"message": "<raw>"}' };
  if (payload[i] !== 0x7b /* { */) return { ok: true, cmd: 'test_rule', message: payload };
  const parsed = parseJsonObject(payload.toString('utf8'));
  if (!parsed.ok) return { ok: false, error: parsed.error };
  const { message, transaction } = parsed.value;
  if (typeof message !== 'string' || message === '') {
    return { ok: false, error: 'message must be a non-empty string holding the raw RFC 822 message', transaction };
  }
  return { ok: true, cmd: 'test_rule', message: Buffer.from(message, 'utf8'), transaction };
}

function parseJsonObject(text: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'malformed JSON payload' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'payload must be a JSON object' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** The response envelope; `transaction` is echoed only when the request carried one. */
export function makeResponse(result: { data: unknown } | { error: string }, transaction?: unknown): BridgeResponse {
  const out: BridgeResponse = 'error' in result
    ? { status: 'error', data: {}, error: result.error }
    : { status: 'ok', data: result.data ?? {} };
  if (transaction !== undefined) out.transaction = transaction;
  return out;
}
