// MQTT.js's outgoing Store for the link: holds QoS 1/2 publishes until acknowledged, never replays them after a reconnect (the disk outbox owns retries), and names them so a lost connection can drop them.
import { Readable } from 'node:stream';
import type { IStore } from 'mqtt';

type StoredPacket = Parameters<IStore['put']>[0];
type PacketCallback = Parameters<IStore['get']>[1];

/**
 * The Store contract (put/get/del/createStream/close) over a Map, like MQTT.js's own Store, with two differences:
 * `createStream()` (what MQTT.js resends after CONNACK) is always empty, and `messageIds()` lists what is in flight.
 * Passed as `outgoingStore` at connect and at every `reconnect()` (which otherwise swaps in a new default Store).
 */
export class InFlightStore implements IStore {
  private readonly packets = new Map<number, StoredPacket>();

  put(packet: StoredPacket, cb: () => void): this {
    if (packet.messageId !== undefined) this.packets.set(packet.messageId, packet);
    cb?.();
    return this;
  }

  get(packet: Pick<StoredPacket, 'messageId'>, cb: PacketCallback): this {
    const stored = packet.messageId === undefined ? undefined : this.packets.get(packet.messageId);
    if (stored) cb(undefined, stored);
    else cb?.(new Error('missing packet'));
    return this;
  }

  del(packet: Pick<StoredPacket, 'messageId'>, cb: PacketCallback): this {
    const stored = packet.messageId === undefined ? undefined : this.packets.get(packet.messageId);
    if (stored) {
      this.packets.delete(packet.messageId!);
      cb(undefined, stored);
    } else cb?.(new Error('missing packet'));
    return this;
  }

  /** Nothing is replayed after a reconnect: a publish whose ack was lost is retried by the outbox, or by nobody. */
  createStream(): ReturnType<IStore['createStream']> {
    // Node's own stream: the bundle maps readable-stream (whose type MQTT.js names) to it anyway.
    return Readable.from([]) as unknown as ReturnType<IStore['createStream']>;
  }

  close(cb: () => void): void {
    this.packets.clear();
    cb?.();
  }

  /** The message ids of the publishes (and QoS 2 releases) waiting for their acknowledgement. */
  messageIds(): number[] {
    return [...this.packets.keys()];
  }
}
