// `npm run release` for real (amd64 only, to keep CI short): binaries, image, install files and notes in one directory, every file in SHA256SUMS and matching it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT, TARGETS, openTempDir, runCommand } from '../support/binaries.js';

test('release writes binaries, image, notes and SHA256SUMS', { timeout: 900_000, skip: !TARGETS.includes('x64') && 'x64 not among the targets' }, async () => {
  const out = path.join(openTempDir('p2m-release-'), 'r');
  try {
    const r = await runCommand(['bash', path.join(ROOT, 'scripts', 'release.sh'), '--targets', 'x64', '--out', out], { cwd: ROOT, timeoutMs: 600_000 });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.deepEqual(readdirSync(out).sort(), [
      'DIGESTS', 'LICENSE', 'RELEASE_NOTES.md', 'SHA256SUMS', 'example.yaml', 'install.sh', 'pop2mqtt-linux-x64', `pop2mqtt-${version}-linux-amd64.oci.tar`, 'pop2mqtt.service',
    ].sort());
    const sums = readFileSync(path.join(out, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split(/\s+/)[1]);
    assert.deepEqual(sums, readdirSync(out).filter((f) => f !== 'SHA256SUMS').sort());
    execFileSync('sha256sum', ['--check', '--quiet', 'SHA256SUMS'], { cwd: out });
    assert.match(readFileSync(path.join(out, 'RELEASE_NOTES.md'), 'utf8'), new RegExp(`^# pop2mqtt ${version.replace(/\./g, '\\.')} \\(\\d{4}-\\d{2}-\\d{2}\\)\\n\\n### Added`));
    // A second release into the same (now full) directory is refused rather than mixed.
    const again = await runCommand(['bash', path.join(ROOT, 'scripts', 'release.sh'), '--targets', 'x64', '--out', out], { cwd: ROOT, timeoutMs: 60_000 });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is not empty/);
  } finally {
    rmSync(path.dirname(out), { recursive: true, force: true });
  }
});
