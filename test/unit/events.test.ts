// Unit tests of the agent's EventBus: listeners run in order, async ones are awaited, an owner's listeners go with removeListeners, errors reach the emitter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus } from '../../src/events.js';

test('listeners run in subscription order; emit awaits the async ones; synchronous ones have run when emit returns', async () => {
  const bus = new EventBus();
  const seen: string[] = [];
  const a = {};
  const b = {};
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  bus.on('retainedState', (e) => { seen.push(`a:${e.reason}`); }, a);
  bus.on('retainedState', async (e) => { seen.push(`b:${e.full}`); await gate; seen.push('b done'); }, b);
  const done = bus.emit('retainedState', { full: true, reason: 'start' });
  assert.deepEqual(seen, ['a:start', 'b:true'], 'both ran synchronously up to their first await');
  let settled = false;
  void done.then(() => { settled = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'emit waits for the async listener');
  release();
  await done;
  assert.deepEqual(seen, ['a:start', 'b:true', 'b done']);
});

test('removeListeners drops only that owner; alertQueued listeners add publications synchronously', async () => {
  const bus = new EventBus();
  const owner = {};
  const other = {};
  const added: string[] = [];
  bus.on('alertQueued', (e) => e.add({ topic: 'x/event', payload: Buffer.from('1'), qos: 1, retain: false, kind: 'alert', alertId: 'a1' }), owner);
  bus.on('alertQueued', (e) => e.add({ topic: 'x/other', payload: Buffer.from('2'), qos: 1, retain: false, kind: 'alert', alertId: 'a1' }), other);
  const event = { match: {} as never, data: {} as never, publications: [], add: (...p: { topic: string }[]) => { added.push(...p.map((x) => x.topic)); } };
  void bus.emit('alertQueued', event);
  assert.deepEqual(added, ['x/event', 'x/other']);
  bus.removeListeners(owner);
  added.length = 0;
  await bus.emit('alertQueued', event);
  assert.deepEqual(added, ['x/other']);
});

test('an error in a listener reaches the emitter: thrown synchronously, or as the rejection of emit', async () => {
  const bus = new EventBus();
  const sync = new EventBus();
  bus.on('configReloaded', async () => { throw new Error('prune failed'); }, {});
  await assert.rejects(bus.emit('configReloaded', { config: {} as never }), /prune failed/);
  sync.on('configReloaded', () => { throw new Error('boom'); }, {});
  assert.throws(() => sync.emit('configReloaded', { config: {} as never }), /boom/);
});
