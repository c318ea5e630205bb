// The per-server notebook in the state directory: survives a restart, ignores what it cannot trust, forgets old notes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServerNotesFile } from '../../src/state/server-notes.js';
import { silentLogger } from '../../src/log.js';

async function dir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'p2m-notes-'));
}

test('notes are written to servers.json (what a restarted agent reads); one instance per state directory', async () => {
  const d = await dir();
  try {
    const a = await ServerNotesFile.load(d, silentLogger);
    assert.equal(await ServerNotesFile.load(d, silentLogger), a, 'shared by every mailbox of the directory');
    assert.equal(a.recall('h:995/aa'), undefined);
    a.note('h:995/aa', { refusedMechanisms: ['plain', 'plain', 'bogus' as never] });
    await a.flush();
    const doc = JSON.parse(await readFile(path.join(d, 'servers.json'), 'utf8'));
    assert.equal(doc.format, 'pop2mqtt-servers');
    assert.deepEqual(doc.servers['h:995/aa'].refusedMechanisms, ['plain']);
    assert.deepEqual(a.recall('h:995/aa'), { refusedMechanisms: ['plain'] });
    // Nothing left to avoid: the entry goes.
    a.note('h:995/aa', { refusedMechanisms: [] });
    await a.flush();
    assert.deepEqual(JSON.parse(await readFile(path.join(d, 'servers.json'), 'utf8')).servers, {});
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('a corrupt file, foreign entries and notes older than 30 days are ignored, never trusted', async () => {
  const d = await dir();
  try {
    await writeFile(path.join(d, 'servers.json'), '{"format":"pop2mqtt-servers","version":1,"servers":{' +
      `"ok:1/": {"at": ${Date.now() - 1000}, "refusedMechanisms": ["cram-md5", 7, "evil"]},` +
      `"old:1/": {"at": ${Date.now() - 31 * 24 * 3600 * 1000}, "refusedMechanisms": ["plain"]},` +
      `"future:1/": {"at": ${Date.now() + 10 * 24 * 3600 * 1000}, "refusedMechanisms": ["plain"]},` +
      '"junk:1/": "x"}}');
    const n = await ServerNotesFile.load(d, silentLogger);
    assert.deepEqual(n.recall('ok:1/'), { refusedMechanisms: ['cram-md5'] });
    for (const k of ['old:1/', 'future:1/', 'junk:1/']) assert.equal(n.recall(k), undefined, k);
    const d2 = await dir();
    try {
      await writeFile(path.join(d2, 'servers.json'), '{"format":');
      const e = await ServerNotesFile.load(d2, silentLogger);
      assert.equal(e.recall('ok:1/'), undefined);
      e.note('x:1/', { refusedMechanisms: ['login'] });
      await e.flush();
      assert.ok(JSON.parse(await readFile(path.join(d2, 'servers.json'), 'utf8')).servers['x:1/'], 'rewritten whole');
    } finally {
      await rm(d2, { recursive: true, force: true });
    }
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
