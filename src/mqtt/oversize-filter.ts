// MQTT 3.1.1 has no maximum packet size: this stream filter sits between the socket and MQTT.js and skips the payload of an oversized PUBLISH as it streams in, so it is never buffered.
import { Duplex } from 'node:stream';

/** Payload that replaces a skipped one: the bridge answers it with "request too large" and the original size. */
export const OVERSIZE_MARKER = '\u0000pop2mqtt-oversize:';

/** The original size carried by a replaced payload, or undefined for an ordinary payload. */
export function oversizeOf(payload: Buffer): number | undefined {
  if (payload.length > 64 || payload[0] !== 0) return undefined;
  const text = payload.toString('latin1');
  if (!text.startsWith(OVERSIZE_MARKER)) return undefined;
  const n = Number(text.slice(OVERSIZE_MARKER.length));
  return Number.isSafeInteger(n) ? n : undefined;
}

function encodeLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

type State =
  | { kind: 'header'; bytes: number[] }
  | { kind: 'pass'; left: number }
  | { kind: 'publish-head'; first: number; remaining: number; bytes: Buffer[]; have: number }
  | { kind: 'skip'; left: number };

/**
 * Wraps the broker connection of an MQTT 3.1.1 client. Writes go through untouched. Incoming packets go through
 * untouched too, except a PUBLISH whose remaining length exceeds `maxPayloadBytes`: its fixed and variable header
 * (topic, packet id) are kept, so MQTT.js acknowledges it as usual, and its payload is replaced by
 * OVERSIZE_MARKER + original size while the real bytes are dropped as they arrive.
 */
export class OversizeFilter extends Duplex {
  private state: State = { kind: 'header', bytes: [] };

  constructor(private readonly inner: Duplex, private readonly maxPayloadBytes: number, private readonly onSkip: (bytes: number) => void = () => {}) {
    super();
    inner.on('data', (chunk: Buffer) => { if (!this.push(this.screen(chunk))) inner.pause(); });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => { if (!this.destroyed) this.destroy(); });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.inner.write(chunk, encoding, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    cb(err);
  }

  /** Consumes one chunk from the socket; returns the bytes MQTT.js should see. */
  private screen(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      const st = this.state;
      if (st.kind === 'pass' || st.kind === 'skip') {
        const n = Math.min(st.left, chunk.length - i);
        if (st.kind === 'pass') out.push(chunk.subarray(i, i + n));
        i += n;
        st.left -= n;
        if (st.left === 0) this.state = { kind: 'header', bytes: [] };
        continue;
      }
      if (st.kind === 'header') {
        st.bytes.push(chunk[i++]!);
        if (st.bytes.length === 1 || (st.bytes.length < 5 && (st.bytes[st.bytes.length - 1]! & 0x80))) continue;
        let remaining = 0;
        for (let k = st.bytes.length - 1; k >= 1; k--) remaining = remaining * 128 + (st.bytes[k]! & 0x7f);
        const first = st.bytes[0]!;
        if (first >> 4 === 3 && remaining > this.maxPayloadBytes) {
          this.state = { kind: 'publish-head', first, remaining, bytes: [], have: 0 };
        } else {
          out.push(Buffer.from(st.bytes));
          this.state = remaining > 0 ? { kind: 'pass', left: remaining } : { kind: 'header', bytes: [] };
        }
        continue;
      }
      // publish-head: topic length (2), topic, packet id (2, QoS > 0); then drop the payload.
      const qos = (st.first >> 1) & 3;
      const n = Math.min(chunk.length - i, 2 + 65535 + 2 - st.have);
      st.bytes.push(chunk.subarray(i, i + n));
      st.have += n;
      i += n;
      const head = Buffer.concat(st.bytes);
      st.bytes = [head];
      if (head.length < 2) continue;
      const need = 2 + head.readUInt16BE(0) + (qos > 0 ? 2 : 0);
      if (head.length < need) continue;
      const vh = head.subarray(0, need);
      const marker = Buffer.from(`${OVERSIZE_MARKER}${st.remaining - need}`, 'latin1');
      out.push(Buffer.from([st.first]), encodeLength(vh.length + marker.length), vh, marker);
      this.onSkip(st.remaining - need);
      // Bytes of this chunk taken beyond the header belong to the payload: give them back, then skip the rest.
      i -= head.length - need;
      this.state = { kind: 'skip', left: st.remaining - need };
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
