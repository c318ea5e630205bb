// Tests of writeFileAtomic: a string, a Buffer or parts land whole under the name, no temp file is left, the mode is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../src/state/atomic-file.js';

test('writes a string, a Buffer and parts (an empty one and a large one among them) whole, and leaves no temp file', { timeout: 5000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-atomic-'));
  try {
    const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
    await writeFileAtomic(path.join(dir, 'a'), 'héllo\n');
    await writeFileAtomic(path.join(dir, 'b'), Buffer.from('bytes'));
    await writeFileAtomic(path.join(dir, 'c'), [Buffer.from('{"v":1}\n'), Buffer.alloc(0), big, Buffer.from('end')], 0o640, { syncDir: false });
    assert.equal(await readFile(path.join(dir, 'a'), 'utf8'), 'héllo\n');
    assert.equal(await readFile(path.join(dir, 'b'), 'utf8'), 'bytes');
    assert.deepEqual(await readFile(path.join(dir, 'c')), Buffer.concat([Buffer.from('{"v":1}\n'), big, Buffer.from('end')]));
    assert.equal((await stat(path.join(dir, 'c'))).mode & 0o777, 0o640);
    await writeFileAtomic(path.join(dir, 'a'), 'replaced');
    assert.equal(await readFile(path.join(dir, 'a'), 'utf8'), 'replaced');
    assert.deepEqual((await readdir(dir)).sort(), ['a', 'b', 'c']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
