// Full-message parsing (after RETR) with mailparser's streaming MailParser: charset-aware text, HTML→text, attachments streamed with caps.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { MailParser } from 'mailparser';
import { MessageParseError } from './errors.js';
import { findHeaderEnd, loadHeaderDecoder, parseHeaders, type ParsedHeaders, DEFAULT_HEADER_LIMITS } from './headers.js';

export interface AttachmentInfo {
  filename?: string;
  contentType: string;
  /** Decoded size in bytes. */
  size: number;
  /** Hex SHA-256 of the decoded content. */
  sha256: string;
  partId?: string;
  contentId?: string;
  disposition?: string;
  /**
   * The decoded bytes, when they were kept: only if no onAttachment callback was given, keepAttachment allowed it
   * and the attachment is not larger than maxAttachmentBytes.
   */
  content?: Buffer;
}

export interface ParsedMessage {
  headers: ParsedHeaders;
  /** Decoded text of the text/plain parts, or of the HTML converted to text when there is none; capped at maxTextBytes. */
  text: string;
  /** Metadata of every attachment within maxAttachments (content only as described on AttachmentInfo). */
  attachments: AttachmentInfo[];
  /**
   * Names of the limits this message broke: parts, depth, attachments, attachment_bytes, text, html (HTML cut to
   * maxHtmlBytes), html_plain (HTML too large or deep for html-to-text: converted by the linear stripper), mime_error.
   */
  limitsExceeded: string[];
}

export interface BodyLimits {
  /** Most MIME parts (default 256); beyond it MIME parsing stops and 'parts' is reported. */
  maxParts?: number;
  /** Deepest multipart nesting reported as fine (default 20); deeper is reported as 'depth'. */
  maxDepth?: number;
  /** Largest attachment whose bytes are kept or handed to onAttachment (default 10 MiB); larger: metadata only. */
  maxAttachmentBytes?: number;
  /** Most attachments recorded (default 32). */
  maxAttachments?: number;
  /** Longest body text kept, in characters (default 1 MiB). */
  maxTextBytes?: number;
  /** Longest HTML converted to text (default 2 MiB); longer HTML is cut first. */
  maxHtmlBytes?: number;
  /** Largest header block (default 256 KiB). */
  maxHeaderBytes?: number;
  /** Decide from type/filename whether to keep an attachment's bytes at all (default: keep). RuleSet.wantsAttachment fits. */
  keepAttachment?: (a: Pick<AttachmentInfo, 'filename' | 'contentType' | 'disposition'>) => boolean;
}

const DEFAULTS = {
  maxParts: 256,
  maxDepth: 20,
  maxAttachmentBytes: 10 * 1024 * 1024,
  maxAttachments: 32,
  maxTextBytes: 1024 * 1024,
  maxHtmlBytes: 2 * 1024 * 1024,
  maxHeaderBytes: DEFAULT_HEADER_LIMITS.maxBytes,
};

interface MailParserAttachment {
  type: 'attachment';
  content: Readable;
  contentType: string;
  filename?: string;
  partId?: string;
  contentId?: string;
  contentDisposition?: string;
  release: (() => void) | null;
}
interface MailParserText { type: 'text'; text?: string; html?: string | false }
interface TreeNode { children?: TreeNode[] }

/** Depth of the MIME tree mailparser built (internal `tree`, present in the pinned mailparser 3.9.x). */
function treeDepth(node: TreeNode | undefined): number {
  if (!node) return 0;
  let max = 0;
  const stack: [TreeNode, number][] = [[node, 1]];
  while (stack.length) {
    const [n, d] = stack.pop()!;
    if (d > max) max = d;
    for (const c of n.children ?? []) stack.push([c, d + 1]);
  }
  return max;
}

/**
 * mailparser's first stage (mailsplit's ChunkedPassthrough) concatenates its input until it holds 64 KiB, copying
 * everything held so far at every write: fed line-sized or socket-sized pieces it copies each byte many times over
 * (about 8 times for a RETR read off TLS). Writes of at least this size are copied once.
 */
export const PARSER_WRITE_BYTES = 64 * 1024;

/**
 * Stream `source` into the parser in writes of PARSER_WRITE_BYTES (the last one shorter), honouring backpressure on
 * both sides. Chunks are taken one at a time in flowing mode (an async iterator would concatenate whatever is buffered
 * first). Once the parser is gone (destroyed after a MIME error) the rest is read and dropped, so the source is
 * always consumed to its end. Rejects with the source's error.
 */
function feedParser(source: Readable, parser: MailParser, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let held: Buffer[] = [];
    let heldBytes = 0;
    let waitingDrain = false;
    let parserGone = parser.destroyed;
    const resume = () => {
      parser.removeListener('drain', resume);
      if (!waitingDrain) return;
      waitingDrain = false;
      source.resume();
    };
    const onParserClose = () => {
      parserGone = true;
      resume();
    };
    const write = () => {
      const buf = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
      held = [];
      heldBytes = 0;
      if (parserGone) return;
      if (!parser.write(buf) && !waitingDrain && !parserGone) {
        waitingDrain = true;
        source.pause();
        parser.once('drain', resume);
      }
    };
    const cleanup = () => {
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      source.removeListener('error', onError);
      parser.removeListener('close', onParserClose);
      parser.removeListener('drain', resume);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      if (buf.length === 0) return;
      onChunk(buf);
      held.push(buf);
      heldBytes += buf.length;
      if (heldBytes >= PARSER_WRITE_BYTES) write();
    };
    const onEnd = () => {
      cleanup();
      if (heldBytes > 0) write();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      held = [];
      reject(err);
    };
    parser.once('close', onParserClose);
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
  });
}

interface MailParserNode { contentType?: string; disposition?: string }
interface MailParserInternals {
  curnode?: MailParserNode;
  processChunk(data: { type: string; value?: Buffer }, done: (err?: Error) => void): void;
}

/**
 * mailparser keeps every inline text part whole (chunks, then one concatenated copy, then a string, then a copy
 * with line ends replaced): a 24 MB HTML part cost over 100 MB. Feed each inline text part at most `maxRawBytes` of
 * its encoded body (enough for maxHtmlBytes/maxTextBytes after base64) and drop the rest, reporting `onCut` once per
 * part. Hooks processChunk, the one place mailparser writes body bytes to a part's decoder (mailparser 3.9.x).
 */
export function capTextParts(parser: MailParser, maxRawBytes: number, onCut: (contentType: string) => void): void {
  const p = parser as unknown as MailParserInternals;
  const inner = p.processChunk.bind(parser);
  const seen = new WeakMap<MailParserNode, number>();
  p.processChunk = (data, done) => {
    const node = p.curnode;
    if (data.type === 'body' && data.value && node && node.disposition === 'inline' && /^text\//i.test(node.contentType ?? '')) {
      const before = seen.get(node) ?? 0;
      seen.set(node, before + data.value.length);
      if (before + data.value.length > maxRawBytes) {
        if (before <= maxRawBytes) onCut(node.contentType!.toLowerCase());
        const room = Math.max(0, maxRawBytes - before);
        if (room === 0) return void setImmediate(done);
        data = { ...data, value: data.value.subarray(0, room) };
      }
    }
    inner(data, done);
  };
}

/**
 * Parse a whole message. Attachments are streamed: each is hashed and measured, and its bytes are buffered only up
 * to maxAttachmentBytes, then either handed to `onAttachment` (awaited, so it applies backpressure) or kept on
 * `AttachmentInfo.content` when no callback is given. Broken MIME never throws: what could be read is returned and
 * 'mime_error' is reported; only an unparseable or oversized top-level header block throws MessageParseError.
 */
export async function parseMessage(
  input: Buffer | Readable,
  limits: BodyLimits = {},
  onAttachment?: (a: AttachmentInfo, content: Buffer) => Promise<void>,
): Promise<ParsedMessage> {
  await loadHeaderDecoder();
  const L = { ...DEFAULTS, ...limits };
  const limitsExceeded = new Set<string>();
  const attachments: AttachmentInfo[] = [];
  let plainText: string | undefined;
  let html: string | undefined;
  let attachmentCount = 0;

  // Collect the top-level header block while streaming: chunks are kept as they come and only the seam between
  // the previous chunk and the new one is searched, so small chunks do not make this quadratic.
  const headChunks: Buffer[] = [];
  let headLen = 0;
  let headDone = false;
  let headBlock: Buffer | undefined;
  let tail = Buffer.alloc(0);
  const watchHead = (chunk: Buffer) => {
    if (headDone) return;
    const before = headLen;
    headChunks.push(chunk);
    headLen += chunk.length;
    const probe = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    const offset = before - tail.length;
    const end = findHeaderEnd(probe, offset === 0); // only a probe that starts the message may open with the empty line
    if (end) {
      headDone = true;
      headBlock = Buffer.concat(headChunks, headLen).subarray(0, offset + end.headerEnd);
      headChunks.length = 0;
    } else if (headLen > L.maxHeaderBytes) {
      headDone = true;
      headBlock = Buffer.concat(headChunks, headLen); // parseHeaders reports HEADER_TOO_LARGE
      headChunks.length = 0;
    } else {
      tail = Buffer.from(probe.subarray(-3));
    }
  };

  const parser = new MailParser({
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipImageLinks: true,
    skipTextLinks: true,
    maxChildNodes: L.maxParts,
    maxHeadSize: L.maxHeaderBytes,
  } as ConstructorParameters<typeof MailParser>[0]);
  capTextParts(parser, Math.ceil((Math.max(L.maxHtmlBytes, L.maxTextBytes) * 4) / 3) + 4096, (type) => limitsExceeded.add(type === 'text/html' ? 'html' : 'text'));

  const pending: Promise<void>[] = [];
  let callbackError: unknown;

  parser.on('data', (data: MailParserAttachment | MailParserText) => {
    if (data.type === 'text') {
      if (typeof data.text === 'string') plainText = data.text;
      if (typeof data.html === 'string') html = data.html;
      return;
    }
    attachmentCount++;
    const recorded = attachmentCount <= L.maxAttachments;
    if (!recorded) limitsExceeded.add('attachments');
    const info: AttachmentInfo = { contentType: data.contentType || 'application/octet-stream', size: 0, sha256: '' };
    if (data.filename) info.filename = data.filename;
    if (data.partId) info.partId = data.partId;
    if (data.contentId) info.contentId = data.contentId;
    if (data.contentDisposition) info.disposition = data.contentDisposition;
    let keep = recorded && (L.keepAttachment ? L.keepAttachment(info) : true);
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    pending.push(
      new Promise<void>((resolve) => {
        data.content.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
          if (keep) {
            if (size > L.maxAttachmentBytes) {
              keep = false;
              chunks.length = 0;
              limitsExceeded.add('attachment_bytes');
            } else chunks.push(chunk);
          }
        });
        const finish = async () => {
          info.size = size;
          info.sha256 = hash.digest('hex');
          if (recorded) attachments.push(info);
          try {
            if (keep) {
              const content = Buffer.concat(chunks, size);
              if (onAttachment) await onAttachment(info, content);
              else info.content = content;
            }
          } catch (e) {
            callbackError ??= e;
          }
          data.release?.();
          resolve();
        };
        data.content.once('end', () => void finish());
        data.content.once('error', () => {
          limitsExceeded.add('mime_error');
          data.release?.();
          resolve();
        });
      }),
    );
  });

  const done = new Promise<void>((resolve) => {
    parser.once('end', () => resolve());
    parser.on('error', (err: Error & { code?: string }) => {
      limitsExceeded.add(/child nodes/i.test(err.message) ? 'parts' : 'mime_error');
      resolve();
    });
  });

  try {
    if (Buffer.isBuffer(input)) {
      watchHead(input);
      parser.write(input);
    } else await feedParser(input, parser, watchHead);
  } finally {
    parser.end();
  }
  await done;
  // after a MIME error an attachment stream may never end: keep what finished, do not wait for the rest
  if (!limitsExceeded.has('mime_error') && !limitsExceeded.has('parts')) await Promise.all(pending);
  if (callbackError) throw callbackError;

  if (!headBlock) headBlock = Buffer.concat(headChunks, headLen); // no blank line: all of it is header
  const headers = parseHeaders(headBlock, { maxBytes: L.maxHeaderBytes });

  const depth = treeDepth((parser as unknown as { tree?: TreeNode }).tree);
  if (depth > L.maxDepth + 1) limitsExceeded.add('depth');

  let text = plainText ?? '';
  if (!text.trim() && html) {
    let h = html;
    if (h.length > L.maxHtmlBytes) {
      h = h.slice(0, L.maxHtmlBytes);
      limitsExceeded.add('html');
    }
    // html-to-text (htmlparser2, entities...) is loaded only for a message whose text is all HTML
    const { htmlBodyText } = await import('./html-text.js');
    const converted = htmlBodyText(h, L.maxTextBytes);
    if (converted.converter === 'plain') limitsExceeded.add('html_plain');
    text = converted.text;
  }
  if (text.length > L.maxTextBytes) {
    text = text.slice(0, L.maxTextBytes);
    limitsExceeded.add('text');
  }
  return { headers, text, attachments, limitsExceeded: [...limitsExceeded] };
}

export { MessageParseError };
