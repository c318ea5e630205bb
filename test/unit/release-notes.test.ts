// Release notes come from CHANGELOG.md's section of the version; a missing, undated or empty section stops the release with a message saying what to add.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { releaseNotes, ChangelogError } from '../../scripts/release/notes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const CHANGELOG = `# Changelog

## [Unreleased]
- something not yet released

## [1.2.0] - 2027-01-05
### Added
- motion binary sensors
### Fixed
- a 1.2 fix

## [1.1.0] - 2026-12-24
- older

[Unreleased]: https://example.org/compare/v1.2.0...HEAD
[1.2.0]: https://example.org/releases/tag/v1.2.0
`;

test('takes exactly the section of the version, with its date', () => {
  const n = releaseNotes(CHANGELOG, '1.2.0');
  assert.equal(n.date, '2027-01-05');
  assert.equal(n.body, '### Added\n- motion binary sensors\n### Fixed\n- a 1.2 fix');
  assert.equal(releaseNotes(CHANGELOG, '1.1.0').body, '- older', 'the link references at the end are not notes');
});

test('a missing, undated or empty section is an error that names the fix', () => {
  assert.throws(() => releaseNotes(CHANGELOG, '1.3.0'), (e: Error) => e instanceof ChangelogError && /no "## \[1\.3\.0\] - YYYY-MM-DD" section/.test(e.message));
  assert.throws(() => releaseNotes('## [2.0.0]\n- x\n', '2.0.0'), /needs a date/);
  assert.throws(() => releaseNotes('## [2.0.0] - 2027-02-02\n### Added\n\n## [1.0.0] - 2026-01-01\n- y\n', '2.0.0'), /lists no changes/);
  assert.throws(() => releaseNotes(CHANGELOG, '1.2'), /no "## \[1\.2\]/, 'no prefix match of 1.2 on 1.2.0');
});

test("the project's CHANGELOG.md has notes for package.json's version", () => {
  const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const n = releaseNotes(readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8'), version);
  assert.match(n.body, /^- /m);
});
