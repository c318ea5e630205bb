// Release notes from CHANGELOG.md (Keep a Changelog): the section of one version, checked to exist and to say something.
import { readFileSync, writeFileSync } from 'node:fs';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export class ChangelogError extends Error {}

/** The body of `## [version] - date` up to the next `## ` heading (link references at the end excluded). */
export function releaseNotes(changelog: string, version: string): { date: string; body: string } {
  const lines = changelog.split(/\r?\n/);
  const esc = version.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const head = new RegExp(`^## \\[${esc}\\](?: - (\\d{4}-\\d{2}-\\d{2}))?\\s*$`);
  const start = lines.findIndex((l) => head.test(l));
  if (start < 0) throw new ChangelogError(`CHANGELOG.md has no "## [${version}] - YYYY-MM-DD" section: move the [Unreleased] entries under it`);
  const date = head.exec(lines[start]!)![1];
  if (!date) throw new ChangelogError(`CHANGELOG.md: the [${version}] heading needs a date ("## [${version}] - YYYY-MM-DD")`);
  let end = lines.findIndex((l, i) => i > start && (/^## /.test(l) || /^\[[^\]]+\]: /.test(l)));
  if (end < 0) end = lines.length;
  const body = lines.slice(start + 1, end).join('\n').trim();
  if (!/^- /m.test(body)) throw new ChangelogError(`CHANGELOG.md: the [${version}] section lists no changes`);
  return { date, body };
}

// CLI: node --import tsx scripts/release/notes.ts CHANGELOG.md VERSION OUT.md
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, version, out] = process.argv.slice(2);
  if (!file || !version || !out) {
    process.stderr.write('usage: notes.ts CHANGELOG.md VERSION OUT.md\n');
    process.exit(2);
  }
  try {
    const { date, body } = releaseNotes(readFileSync(file, 'utf8'), version);
    writeFileSync(out, `# pop2mqtt ${version} (${date})\n\n${body}\n`);
  } catch (err) {
    process.stderr.write(`release: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
