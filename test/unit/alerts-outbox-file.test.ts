// Proves the outbox entry file written in parts (JSON line, then the payload as is) is byte-exact and survives a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Outbox } from '../../src/alerts/outbox.js';
import { silentLogger } from '../../src/log.js';

test('a 1 MB payload is stored as a JSON line followed by exactly its bytes, and read back after a restart', { timeout: 10_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-outbox-file-'));
  try {
    const payload = Buffer.alloc(1 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 9)) & 0xff;
    const limits = { maxMessages: 10, maxBytes: 8 << 20, whenFull: 'stop_polling' as const };
    const box = await Outbox.open(dir, limits, silentLogger);
    await box.enqueue([{ key: 'a#1', mailbox: 'home', uid: 'u1', messageKeys: ['a#1'], deleteAfter: true, topic: 'snapshots/cam', qos: 1, retain: true, payload }]);
    const files = (await readdir(dir)).filter((n) => n.endsWith('.msg'));
    assert.equal(files.length, 1);
    const raw = await readFile(path.join(dir, files[0]!));
    const nl = raw.indexOf(0x0a);
    const meta = JSON.parse(raw.subarray(0, nl).toString('utf8')) as { length: number; topic: string; key: string };
    assert.equal(meta.length, payload.length);
    assert.equal(meta.topic, 'snapshots/cam');
    assert.ok(raw.subarray(nl + 1).equals(payload));
    assert.equal(raw.length, nl + 1 + payload.length);

    const again = await Outbox.open(dir, limits, silentLogger);
    const [entry] = again.pendingFor('home');
    assert.ok(entry);
    assert.equal(entry.key, 'a#1');
    assert.equal(entry.retain, true);
    assert.equal(entry.deleteAfter, true);
    assert.ok(entry.payload.equals(payload));
    assert.equal(again.byteSize, payload.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
