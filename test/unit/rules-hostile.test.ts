// Runs the hostile-mail corpus through parse → staged evaluation → publication building: no crash, bounded time, topics stay under the prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { compileRules, type RuleConfig, type MessageData } from '../../src/rules/index.js';
import { explainMessage } from '../../src/alerts/explain.js';
import { parseHeaders, loadHeaderDecoder } from '../../src/message/headers.js';
import { parseMessage } from '../../src/message/body.js';
import { firstBodyLines } from '../../src/message/preview.js';
import { buildPublications } from '../../src/alerts/build.js';
import { MessageParseError } from '../../src/message/errors.js';
import { hostileMessages } from '../fixtures/mail/generate-hostile.js';

// Header decoding (libmime) is loaded on demand, as the poller does before parsing new mail.
await loadHeaderDecoder();

const DIR = fileURLToPath(new URL('../fixtures/mail/hostile/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as Record<string, { expectParseError?: string }>;
const files = readdirSync(DIR).filter((f) => f.endsWith('.eml')).sort();
const BASE = 'pop2mqtt';

// Every feature that reads message content, with hostile values flowing into topics, payloads and properties.
const RULES = [
  { name: 'subject-topic', when: { subject: { regex: '^(?<s>.*)$' } }, publish: [{ topic: 'subj/{{s}}/{{subject}}' }, { topic: 'raw/{{from.name}}/{{from.address}}', payload: '{{subject}} {{body}}', properties: { s: '{{subject}}', h: '{{header.X-Camera-Id}}' } }] },
  { name: 'header-topic', when: { exists: 'X-Camera-Id' }, publish: { topic: 'cam/{{header.X-Camera-Id}}/{{header.X-Priority}}', payload: '{"s":{{subject|json}},"p":{{preview|json}}}' } },
  { name: 'addr', when: { any: [{ from: { domain: { glob: '*' } } }, { to: { contains: '@' } }, { cc: { name: { regex: '.' } } }] } },
  { name: 'dates', when: { any: [{ date: { newer_than: '3650d' } }, { date: { older_than: '1s' } }] } },
  { name: 'preview', when: { preview: { lines: 30, regex: '(?<zone>zone \\d+)' } }, publish: { topic: 'zone/{{zone}}' } },
  { name: 'body', when: { body: { regex: '(?<word>[a-z]+)' } }, publish: { topic: 'body/{{word}}' } },
  { name: 'att', when: { attachment: { type: 'image/*' } }, attachments: { topic: 'snap/{{subject}}', types: ['*/*'], max_size: '1MB' } },
  { name: 'auth', when: { authenticated: true }, publish: { topic: 'cmd/{{subject}}' } },
  { name: 'secret', when: { shared_secret: { secret: 'hostile-corpus-secret' } } },
  // a command rule: pinned sender, and its Date and Message-ID guards run on every hostile header too
  { name: 'command', action: true, when: { shared_secret: { secret: 'hostile-corpus-secret' }, from: { domain: { one_of: ['example.com', 'nvr.local'] } } }, publish: { topic: 'cmd/{{subject}}' } },
  { name: 'size', when: { size: { over: 0 } }, body: true, publish: { topic: 'size/{{size}}/{{message_id}}' } },
  { name: 'not', when: { not: { all: [{ subject: { contains: 'x' } }, { body: { contains: 'y' } }] } } },
] as RuleConfig[];

function checkPublication(topic: string, payload: Buffer, kind: string, where: string, levels?: number): void {
  assert.ok(topic.startsWith(BASE + '/'), `${where}: topic ${JSON.stringify(topic.slice(0, 100))} leaves the prefix`);
  if (levels !== undefined) assert.equal(topic.split('/').length, levels, `${where}: values added topic levels: ${JSON.stringify(topic.slice(0, 200))}`);
  for (const level of topic.split('/')) {
    assert.ok(level !== '' && level !== '.' && level !== '..', `${where}: bad level in ${JSON.stringify(topic.slice(0, 200))}`);
    assert.doesNotMatch(level, /[#+\u0000]/, `${where}: wildcard or NUL in topic`);
  }
  assert.ok(Buffer.byteLength(topic) < 65535, `${where}: topic too long`);
  if (kind === 'alert-default' || kind === 'attachment-meta') JSON.parse(payload.toString('utf8'));
}

test('the committed corpus is what the generator produces (deterministic) and has at least 50 messages', { timeout: 20000 }, () => {
  const generated = hostileMessages();
  assert.ok(generated.length >= 50);
  assert.equal(files.length, generated.length);
  generated.forEach((m, i) => {
    const file = `${String(i + 1).padStart(2, '0')}-${m.name}.eml`;
    assert.ok(readFileSync(join(DIR, file)).equals(m.raw), `${file} differs from the generator: run npx tsx test/fixtures/mail/generate-hostile.ts`);
    assert.deepEqual(manifest[file], m.expectParseError ? { expectParseError: m.expectParseError } : {});
  });
});

test('every hostile message: staged evaluation and full parse never crash, stay bounded, never leave the prefix', { timeout: 120000 }, async () => {
  const rs = compileRules(RULES, { trustedAuthservIds: ['mx.home.example'] });
  const now = new Date('2025-07-01T09:00:00Z');
  let matchedSomething = 0;
  for (const file of files) {
    const raw = readFileSync(join(DIR, file));
    const expect = manifest[file]?.expectParseError;
    const t0 = Date.now();
    const refused = (e: unknown) => {
      assert.ok(e instanceof MessageParseError, `${file}: unexpected ${(e as Error)?.stack ?? String(e)}`);
      assert.equal(e.code, expect, `${file}: unexpected parse refusal ${e.code}`);
      return true;
    };
    // 1) the staged path the agent takes (TOP 0 → TOP N → RETR), via explain
    try {
      const r = await explainMessage(raw, rs, { now, baseTopic: BASE, maxMessageSize: 10 * 1024 * 1024 });
      assert.equal(r.error?.code, expect, `${file}: parse refusal`);
      assert.equal(r.decided, expect === undefined, file);
      for (const rule of r.rules) for (const p of rule.publications) {
        checkPublication(p.topic, Buffer.from(p.payload ?? ''), p.kind === 'alert' && p.payload?.startsWith('{"id"') ? 'alert-default' : p.kind, file);
      }
    } catch (e) {
      refused(e);
    }
    // 2) direct: headers, preview and full data all present; build every match
    try {
      const d: MessageData = { mailbox: 'mb/#+', uid: '../UID\u0000', msgNum: 1, size: raw.length };
      d.headers = parseHeaders(raw);
      d.preview = { lines: 30, text: firstBodyLines(raw, 30) };
      d.full = await parseMessage(raw);
      const ev = rs.evaluate(d, now);
      assert.equal(ev.decided, true, file);
      if (ev.matched.length) matchedSomething++;
      for (const m of ev.matched) {
        const pubs = buildPublications(m, d, { baseTopic: BASE, now, suppressed: 3 });
        pubs.forEach((p, i) => {
          // alert publications come first, one per publish spec, in order
          const tpl = p.kind === 'alert' ? m.rule.publish[i]!.topic : m.rule.attachments!.topic;
          const levels = 1 + tpl.split('/').length + (p.kind === 'attachment-meta' ? 1 : 0);
          checkPublication(p.topic, p.payload, p.kind === 'alert' && m.rule.publish[i]?.payload === 'default' ? 'alert-default' : p.kind, file, levels);
          assert.equal(p.payload.includes('hostile-corpus-secret'), false);
          for (const [k, v] of Object.entries(p.properties?.userProperties ?? {})) assert.doesNotMatch(k + v, /\u0000/);
        });
      }
      assert.equal(expect, undefined, `${file}: expected ${expect}`);
    } catch (e) {
      refused(e);
    }
    assert.ok(Date.now() - t0 < 5000, `${file} took ${Date.now() - t0} ms`);
  }
  assert.ok(matchedSomething > files.length / 2, 'the rules should match most of the corpus, otherwise nothing is exercised');
});
