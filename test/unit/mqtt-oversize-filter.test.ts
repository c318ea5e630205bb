// The MQTT 3.1.1 oversize filter: every packet passes byte-identical except an oversized PUBLISH, whose payload is dropped as it streams in, at any chunk boundary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { OversizeFilter, oversizeOf } from '../../src/mqtt/oversize-filter.js';

const LIMIT = 1000;
const gen = (p: Record<string, unknown>) => mqttPacket.generate(p as unknown as mqttPacket.Packet);
const packets = [
  gen({ cmd: 'connack', returnCode: 0, sessionPresent: false }),
  gen({ cmd: 'publish', topic: 'pop2mqtt/bridge/request/status', payload: Buffer.from('{}'), qos: 1, messageId: 7, retain: false, dup: false }),
  gen({ cmd: 'publish', topic: 'pop2mqtt/bridge/request/test_rule', payload: Buffer.alloc(5000, 0x61), qos: 1, messageId: 8, retain: false, dup: false }),
  gen({ cmd: 'puback', messageId: 3 }),
  gen({ cmd: 'publish', topic: 'homeassistant/status', payload: Buffer.alloc(200_000, 0x62), qos: 0, retain: true, dup: false }),
  gen({ cmd: 'publish', topic: 'x', payload: Buffer.alloc(LIMIT - 3, 0x63), qos: 0, retain: false, dup: false }),
  gen({ cmd: 'pingresp' }),
];
const wire = Buffer.concat(packets);

async function run(chunkSize: number): Promise<{ out: Buffer; skipped: number[] }> {
  const inner = new PassThrough();
  const skipped: number[] = [];
  const f = new OversizeFilter(inner, LIMIT, (n) => skipped.push(n));
  const parts: Buffer[] = [];
  f.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((r) => f.on('end', r));
  for (let i = 0; i < wire.length; i += chunkSize) inner.write(wire.subarray(i, i + chunkSize));
  inner.end();
  await ended;
  return { out: Buffer.concat(parts), skipped };
}

function parseAll(buf: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const got: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => got.push(p));
  parser.on('error', (e) => { throw e; });
  parser.parse(buf);
  return got;
}

test('oversized PUBLISH payloads are replaced by a marker with their size; everything else is byte-identical, at any chunking', async () => {
  for (const size of [1, 2, 3, 5, 7, 64, 999, 4096, 65536]) {
    const { out, skipped } = await run(size);
    const got = parseAll(out);
    assert.deepEqual(got.map((p) => p.cmd), ['connack', 'publish', 'publish', 'puback', 'publish', 'publish', 'pingresp'], `chunk ${size}`);
    const pubs = got.filter((p): p is mqttPacket.IPublishPacket => p.cmd === 'publish');
    assert.equal(pubs[0]!.payload.toString(), '{}');
    assert.equal(oversizeOf(pubs[1]!.payload as Buffer), 5000, `chunk ${size}`);
    assert.equal(pubs[1]!.messageId, 8, 'the packet id survives, so MQTT.js acknowledges it');
    assert.equal(pubs[1]!.topic, 'pop2mqtt/bridge/request/test_rule');
    assert.equal(oversizeOf(pubs[2]!.payload as Buffer), 200_000);
    assert.equal(pubs[2]!.retain, true);
    assert.equal((pubs[3]!.payload as Buffer).length, LIMIT - 3, 'at the limit: untouched');
    assert.deepEqual(skipped, [5000, 200_000]);
    assert.ok(out.length < 3000, `${out.length} bytes reached MQTT.js`);
  }
  assert.equal(oversizeOf(Buffer.from('{"a":1}')), undefined);
});

test('writes go through untouched, and closing either side closes the other', async () => {
  const inner = new PassThrough();
  const f = new OversizeFilter(inner, LIMIT);
  const written: Buffer[] = [];
  const sink = new PassThrough();
  inner.on('data', (c: Buffer) => written.push(c));
  f.write(Buffer.from('abc'));
  await new Promise((r) => setImmediate(r));
  assert.equal(Buffer.concat(written).toString(), 'abc');
  const closed = new Promise((r) => f.on('close', r));
  inner.destroy();
  await closed;
  sink.destroy();
});
