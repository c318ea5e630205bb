// Reads Dovecot's post-login rawlogs (rawlog_dir, timestamped .in/.out per session): which commands a client sent, what each reply cost, and how many round trips the server waited for.
import { chown, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** Dovecot config line that turns rawlogs on; a session is logged only while `<home>/rawlog` exists. */
export const RAWLOG_CONF = 'rawlog_dir = %h/rawlog\n';

export interface RawlogLine {
  /** Seconds since the epoch, with microseconds. */
  ts: number;
  /** Line content without CRLF. */
  text: string;
  /** Bytes of the line on the wire, CRLF included. */
  bytes: number;
}

export interface Exchange {
  command: string;
  /** Command shape: verb plus argument pattern, e.g. "UIDL", "UIDL n", "TOP n 0", "TOP n k", "RETR n". */
  shape: string;
  receivedAt: number;
  /** Time the last line of the reply was written. */
  doneAt: number;
  ok: boolean;
  replyBytes: number;
  /** True when the server had answered everything before this command arrived: the client made it wait a round trip. */
  newRoundTrip: boolean;
  /** How long the server had been idle (all replies written) when this command arrived, ms; negative when it was still busy. */
  idleBeforeMs: number;
}

export interface RawlogSession {
  name: string;
  /** Time stamp of the first line logged (the login reply). */
  startedAt: number;
  exchanges: Exchange[];
  /** Commands by shape. */
  counts: Record<string, number>;
  /** Reply bytes by shape. */
  bytesByShape: Record<string, number>;
  /** Round trips after login: commands that found the server idle (the first command counts). */
  roundTrips: number;
  /** Bytes the server sent after login (login reply included), and received. */
  outBytes: number;
  inBytes: number;
  /** The "+OK Logged in." reply, which Dovecot counts as post-login although the client's login command caused it. */
  loginReplyBytes: number;
}

/** The rawlog dir of a user whose home is the parent of `maildir`; created owned by the mail user. */
export async function enableRawlog(maildir: string): Promise<string> {
  const dir = path.join(path.dirname(maildir), 'rawlog');
  const st = await stat(maildir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chown(dir, st.uid, st.gid);
  return dir;
}

/** Stop logging (remove the dir and the logs in it). */
export async function disableRawlog(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

function parseLines(text: string): RawlogLine[] {
  const out: RawlogLine[] = [];
  let last = 0;
  for (const raw of text.split('\r\n')) {
    if (raw === '') continue;
    const m = /^(\d+\.\d+) (.*)$/s.exec(raw);
    if (m) {
      last = Number(m[1]);
      out.push({ ts: last, text: m[2]!, bytes: Buffer.byteLength(m[2]!, 'latin1') + 2 });
    } else {
      // A line continued from a previous chunk carries no time stamp.
      out.push({ ts: last, text: raw, bytes: Buffer.byteLength(raw, 'latin1') + 2 });
    }
  }
  return out;
}

export function commandShape(line: string): string {
  const parts = line.trim().split(/\s+/);
  const verb = (parts[0] ?? '').toUpperCase();
  if (verb === 'TOP') return parts[2] === '0' ? 'TOP n 0' : 'TOP n k';
  if (parts.length === 1) return verb;
  return `${verb} ${parts.slice(1).map(() => 'n').join(' ')}`;
}

/** A positive reply to these is multi-line. */
function isMultiLine(shape: string): boolean {
  return ['CAPA', 'UIDL', 'LIST', 'TOP n 0', 'TOP n k', 'RETR n'].includes(shape);
}

/** Pair the commands of one session with their replies. */
export function parseSession(name: string, inText: string, outText: string): RawlogSession {
  const ins = parseLines(inText);
  const outs = parseLines(outText);
  let o = 0;
  let outBytes = 0;
  let lastDone = -Infinity;
  let loginReplyBytes = 0;
  // The pop3 process first sends the reply to the login (its command was seen by the login process).
  if (outs[0] && /^\+OK/.test(outs[0].text) && (ins.length === 0 || outs[0].ts <= ins[0]!.ts)) {
    outBytes += outs[0].bytes;
    loginReplyBytes = outs[0].bytes;
    lastDone = outs[0].ts;
    o = 1;
  }
  const exchanges: Exchange[] = [];
  for (const c of ins) {
    const shape = commandShape(c.text);
    const first = outs[o];
    if (!first) break; // connection closed before the reply
    let bytes = first.bytes;
    let done = first.ts;
    const ok = first.text.startsWith('+OK');
    o++;
    if (ok && isMultiLine(shape)) {
      while (o < outs.length && outs[o]!.text !== '.') {
        bytes += outs[o]!.bytes;
        o++;
      }
      if (o < outs.length) {
        bytes += outs[o]!.bytes;
        done = outs[o]!.ts;
        o++;
      }
    }
    exchanges.push({ command: c.text, shape, receivedAt: c.ts, doneAt: done, ok, replyBytes: bytes, newRoundTrip: c.ts > lastDone, idleBeforeMs: (c.ts - lastDone) * 1000 });
    lastDone = Math.max(lastDone, done);
    outBytes += bytes;
  }
  const counts: Record<string, number> = {};
  const bytesByShape: Record<string, number> = {};
  for (const e of exchanges) {
    counts[e.shape] = (counts[e.shape] ?? 0) + 1;
    bytesByShape[e.shape] = (bytesByShape[e.shape] ?? 0) + e.replyBytes;
  }
  return {
    name, startedAt: Math.min(outs[0]?.ts ?? Infinity, ins[0]?.ts ?? Infinity), exchanges, counts, bytesByShape,
    roundTrips: exchanges.filter((e) => e.newRoundTrip).length,
    outBytes, inBytes: ins.reduce((a, l) => a + l.bytes, 0), loginReplyBytes,
  };
}

/** Round trips counting only server idle gaps longer than minGapMs (on a link with a known delay, shorter gaps are client CPU time). */
export function roundTripsOver(s: RawlogSession, minGapMs: number): number {
  return s.exchanges.filter((e, i) => i === 0 || e.idleBeforeMs > minGapMs).length;
}

/** Every complete session logged in dir, oldest first. */
export async function readSessions(dir: string): Promise<RawlogSession[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return [];
  }
  const names = [...new Set(files.filter((f) => f.endsWith('.in') || f.endsWith('.out')).map((f) => f.replace(/\.(in|out)$/, '')))];
  const out: RawlogSession[] = [];
  for (const n of names) {
    const [i, o] = await Promise.all([readFile(path.join(dir, `${n}.in`), 'latin1').catch(() => ''), readFile(path.join(dir, `${n}.out`), 'latin1').catch(() => '')]);
    out.push(parseSession(n, i, o));
  }
  return out.sort((a, b) => a.startedAt - b.startedAt);
}
