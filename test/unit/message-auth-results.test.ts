// Tests of `authenticated:` (RFC 8601): only the topmost trusted Authentication-Results counts; dkim header.d must equal the From domain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuthenticationResults, decideAuthenticated } from '../../src/message/auth-results.js';
import { parseHeaders, loadHeaderDecoder } from '../../src/message/headers.js';
import { compileRules, type RuleConfig } from '../../src/rules/index.js';
import { eml } from '../fixtures/mail/messages.js';

// Header decoding (libmime) is loaded on demand, as the poller does before parsing new mail.
await loadHeaderDecoder();

const TRUSTED = ['mx.home.example'];

function headersOf(ar: string[], from = 'Boss <boss@example.com>') {
  return parseHeaders(eml([...ar.map((v) => `Authentication-Results: ${v}`), `From: ${from}`, 'Subject: open garage', `Date: ${new Date().toUTCString()}`, '<cmd-1@example.com>'].map((l) => (l.startsWith('<') ? `Message-ID: ${l}` : l))));
}
const decide = (ar: string[], from?: string, trusted = TRUSTED) => decideAuthenticated(headersOf(ar, from), trusted).authenticated;

test('parser: authserv-id, version, methods, properties, comments, quoted strings', { timeout: 5000 }, () => {
  const r = parseAuthenticationResults('mx.home.example 1; dkim=pass (good signature) header.d=example.com header.s="sel;1"; spf=fail smtp.mailfrom=x@y; dmarc=pass (p=reject) header.from=Example.com');
  assert.equal(r!.authservId, 'mx.home.example');
  assert.deepEqual(r!.results.map((x) => [x.method, x.result]), [['dkim', 'pass'], ['spf', 'fail'], ['dmarc', 'pass']]);
  assert.equal(r!.results[0]!.props['header.d'], 'example.com');
  assert.equal(r!.results[0]!.props['header.s'], 'sel;1');
  assert.equal(r!.results[2]!.props['header.from'], 'Example.com');
  assert.deepEqual(parseAuthenticationResults('mx.home.example; none')!.results, []);
  assert.equal(parseAuthenticationResults('  '), undefined);
  assert.equal(parseAuthenticationResults('dkim=pass'), undefined);
  // comment text cannot smuggle a result
  assert.deepEqual(parseAuthenticationResults('mx.home.example; spf=none (dkim=pass header.d=example.com)')!.results.map((x) => x.method), ['spf']);
});

test('dmarc=pass or dkim=pass with header.d equal to the From domain authenticates', { timeout: 5000 }, () => {
  assert.equal(decide(['mx.home.example; dmarc=pass header.from=example.com']), true);
  assert.equal(decide(['mx.home.example; dkim=pass header.d=example.com']), true);
  assert.equal(decide(['MX.HOME.EXAMPLE; DKIM=Pass header.d=EXAMPLE.com']), true);
});

test('dkim header.d different from the From domain (parent, sub or other) is rejected', { timeout: 5000 }, () => {
  assert.equal(decide(['mx.home.example; dkim=pass header.d=mailer.com']), false);
  assert.equal(decide(['mx.home.example; dkim=pass header.d=example.com'], 'a@sub.example.com'), false);
  assert.equal(decide(['mx.home.example; dkim=pass header.d=sub.example.com'], 'a@example.com'), false);
  assert.equal(decide(['mx.home.example; dmarc=pass header.from=other.org']), false);
  assert.equal(decide(['mx.home.example; dkim=fail header.d=example.com; dmarc=fail']), false);
});

test('only the topmost trusted header counts; forged lower ones are ignored', { timeout: 5000 }, () => {
  // the real receiving server says fail on top; the sender forged a pass below
  assert.equal(decide(['mx.home.example; dmarc=fail header.from=example.com', 'mx.home.example; dmarc=pass header.from=example.com']), false);
  // untrusted headers above the trusted one do not matter either way
  assert.equal(decide(['evil.example; dmarc=pass', 'mx.home.example; dkim=pass header.d=example.com']), true);
  assert.equal(decide(['evil.example; dmarc=pass', 'mx.home.example; dmarc=fail']), false);
});

test('conflicting verdicts inside the trusted header mean not authenticated', { timeout: 5000 }, () => {
  const why = (ar: string) => decideAuthenticated(headersOf([ar]), TRUSTED);
  // the exact case of the issue: a fail and then a pass in the same header
  assert.equal(decide(['mx.home.example; dmarc=fail header.from=example.com; dmarc=pass header.from=example.com']), false);
  assert.equal(decide(['mx.home.example; dmarc=pass header.from=example.com; dmarc=fail header.from=example.com']), false);
  assert.match(why('mx.home.example; dmarc=fail; dmarc=pass').reason, /conflicting verdicts.*dmarc=fail and dmarc=pass/);
  // verdicts for two From domains: the verifier saw another From than the one we parsed
  assert.equal(decide(['mx.home.example; dmarc=pass header.from=example.com; dmarc=pass header.from=evil.example']), false);
  // dmarc=fail beside an aligned dkim=pass, and dkim pass and fail for the same domain
  assert.equal(decide(['mx.home.example; dkim=pass header.d=example.com; dmarc=fail header.from=example.com']), false);
  assert.equal(decide(['mx.home.example; dkim=fail header.d=example.com; dkim=pass header.d=example.com']), false);
  assert.match(why('mx.home.example; dkim=fail header.d=example.com; dkim=pass header.d=example.com').reason, /dkim=pass and dkim=fail/);
  // agreeing repeats, and other domains' signatures, are no conflict
  assert.equal(decide(['mx.home.example; dmarc=pass header.from=example.com; dmarc=pass header.from=example.com']), true);
  assert.equal(decide(['mx.home.example; dmarc=pass; dmarc=pass header.from=example.com']), true);
  assert.equal(decide(['mx.home.example; dkim=fail header.d=mailer.com; dkim=pass header.d=example.com']), true);
  assert.equal(decide(['mx.home.example; spf=fail smtp.mailfrom=x@y; dkim=pass header.d=example.com; dmarc=pass']), true);
});

test('untrusted authserv-ids are ignored; no trusted ids configured means never authenticated', { timeout: 5000 }, () => {
  assert.equal(decide(['gmail.com; dmarc=pass header.from=example.com']), false);
  assert.equal(decide(['mx.home.example; dmarc=pass'], undefined, []), false);
  assert.equal(decide([]), false);
});

test('From with several addresses or none is never authenticated', { timeout: 5000 }, () => {
  assert.equal(decide(['mx.home.example; dmarc=pass'], 'a@example.com, b@example.com'), false);
  assert.equal(decide(['mx.home.example; dmarc=pass'], 'undisclosed-recipients:;'), false);
});

test('authenticated: true in a rule, and the trace says why', { timeout: 5000 }, () => {
  const rs = compileRules([{ name: 'cmd', action: true, when: { authenticated: true, from: { domain: { is: 'example.com' } }, subject: { is: 'open garage' } } }] as RuleConfig[], { trustedAuthservIds: TRUSTED });
  const ok = rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 10, headers: headersOf(['mx.home.example; dmarc=pass']) }, new Date());
  assert.equal(ok.matched.length, 1);
  assert.match(ok.trace[0]!.conditions.find((c) => c.path === 'when.authenticated')!.seen ?? '', /dmarc=pass/);
  const forged = rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 10, headers: headersOf(['mx.home.example; dmarc=none', 'mx.home.example; dmarc=pass']) }, new Date());
  assert.equal(forged.matched.length, 0);
  const untrusted = compileRules([{ name: 'cmd', when: { authenticated: true } }] as RuleConfig[], { trustedAuthservIds: [] });
  assert.equal(untrusted.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 10, headers: headersOf(['mx.home.example; dmarc=pass']) }, new Date()).matched.length, 0);
  const negative = compileRules([{ name: 'anon', when: { authenticated: false } }] as RuleConfig[], { trustedAuthservIds: TRUSTED });
  assert.equal(negative.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 10, headers: headersOf(['gmail.com; dmarc=pass']) }, new Date()).matched.length, 1);
});

test('shared_secret: subject token or header value, constant-time compare, never shown in traces', { timeout: 5000 }, () => {
  const secret = 'S3cret-Token-4711';
  const rs = compileRules([
    { name: 'subj', when: { shared_secret: { secret }, subject: { contains: 'open' } } },
    { name: 'hdr', when: { shared_secret: { secret, header: 'X-Token' } } },
  ] as RuleConfig[], { trustedAuthservIds: [] });
  const at = (hs: string[]) => rs.evaluate({ mailbox: 'm', uid: 'u', msgNum: 1, size: 10, headers: parseHeaders(eml(hs)) }, new Date());
  assert.deepEqual(at(['Subject: open garage S3cret-Token-4711']).matched.map((m) => m.rule.name), ['subj']);
  assert.deepEqual(at(['Subject: open garage S3cret-Token-4711x']).matched.map((m) => m.rule.name), []);
  assert.deepEqual(at(['Subject: open garage s3cret-token-4711']).matched.map((m) => m.rule.name), []); // case matters
  assert.deepEqual(at(['Subject: x', 'X-Token:  S3cret-Token-4711 ']).matched.map((m) => m.rule.name), ['hdr']);
  assert.deepEqual(at(['Subject: x', 'X-Token: nope']).matched.map((m) => m.rule.name), []);
  const ev = at(['Subject: open garage S3cret-Token-4711']);
  assert.equal(JSON.stringify(ev.trace).includes(secret), false);
});
