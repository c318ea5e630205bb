// HTML bodies become text within the size and depth limits: html-to-text for ordinary mail, the linear stripper beyond.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert } from 'html-to-text';
import { capTextParts, parseMessage } from '../../src/message/body.js';
import type { MailParser } from 'mailparser';
import { decodeEntities, htmlBodyText, htmlDepth, RICH_HTML_DEPTH, RICH_HTML_LIMIT, stripHtml } from '../../src/message/html-text.js';

const T = { timeout: 60_000 };
const htmlMail = (html: string) => Buffer.from(['From: cam@nvr.local', 'Subject: html', 'Content-Type: text/html; charset=utf-8', '', html].join('\r\n'));
const words = (s: string) => s.split(/\s+/).filter(Boolean);

test('ordinary HTML keeps html-to-text output', T, () => {
  const html = '<html><head><style>p{color:red}</style><title>t</title></head><body><p>UPS <b>on battery</b></p><div>Zone&nbsp;3 &amp; 4</div></body></html>';
  const r = htmlBodyText(html, 1 << 20);
  assert.equal(r.converter, 'rich');
  assert.equal(r.text, convert(html, { wordwrap: false }).replace(/\u00a0/g, ' '));
});

test('the stripper gives the same text as html-to-text on ordinary mail, up to whitespace', T, () => {
  const samples = [
    '<p>UPS <b>on battery</b></p><img src="x.png"><a href="http://evil">link</a>',
    '<table><tr><td>Camera</td><td>Front&nbsp;door</td></tr><tr><td>Event</td><td>Motion &gt; 3s</td></tr></table>',
    '<!-- hidden --><div>Alarm<br>Zone 3</div><script>var x = "<p>no</p>";</script><ul><li>one</li><li>two</li></ul>',
    '<!DOCTYPE html><html><head><title>Alert</title><style>.a{}</style></head><body><h1>Motion</h1><p>at &#x31;0:52 &#8211; cam&#52;</p></body></html>',
  ];
  for (const html of samples) {
    const rich = convert(html, { wordwrap: false, selectors: [{ selector: 'img', format: 'skip' }, { selector: 'a', options: { ignoreHref: true } }, { selector: 'h1', options: { uppercase: false } }] }).replace(/\u00a0/g, ' ');
    const flat = (t: string) => t.replace(/\s+/g, '');
    assert.equal(flat(stripHtml(html)), flat(rich.replace(/^Alert\s*/, '')), html);
  }
  // table cells: html-to-text runs them together ("CameraFront door"), the stripper puts each on its own line
  assert.deepEqual(words(stripHtml(samples[1]!)), ['Camera', 'Front', 'door', 'Event', 'Motion', '>', '3s']);
});

test('deep HTML is converted in one pass: depth counted, early and late text kept', T, async () => {
  const deep = '<div>'.repeat(400_000); // the 2 MB shape of issue 13: 47 s in html-to-text before
  const m = await parseMessage(htmlMail(`<p>Motion on cam4</p>${deep}<p>late words</p>`));
  assert.ok(m.limitsExceeded.includes('html_plain'), m.limitsExceeded.join());
  assert.match(m.text, /^Motion on cam4\n/);
  assert.match(m.text, /late words$/);
  assert.equal(htmlDepth(deep, RICH_HTML_DEPTH), RICH_HTML_DEPTH + 1, 'counting stops just past the limit');
});

test('the depth limit: one level more than RICH_HTML_DEPTH goes to the stripper', T, () => {
  const nest = (d: number) => '<div>'.repeat(d) + 'text' + '</div>'.repeat(d);
  assert.equal(htmlDepth(nest(RICH_HTML_DEPTH)), RICH_HTML_DEPTH);
  assert.equal(htmlBodyText(nest(RICH_HTML_DEPTH), 1000).converter, 'rich');
  assert.equal(htmlBodyText(nest(RICH_HTML_DEPTH + 1), 1000).converter, 'plain');
  assert.equal(htmlBodyText(nest(RICH_HTML_DEPTH + 1), 1000).text, 'text');
  // void elements, self-closing tags and sibling-closed elements do not deepen
  assert.equal(htmlDepth('<br><img src=x><hr/><p>a<p>b<li>c<li>d<td>e<x/>'), 0);
  assert.equal(htmlDepth('<div><span></span><span></span></div><div></div>'), 2);
  assert.equal(htmlDepth('<div>' + '</x>'.repeat(10_000) + '</div>'), 1, 'stray end tags change nothing');
});

test('the size limit: HTML over RICH_HTML_LIMIT goes to the stripper, and its text is capped', T, () => {
  const para = '<p>Motion detected on camera seven in zone three</p>\n';
  const small = para.repeat(Math.floor(RICH_HTML_LIMIT / para.length));
  const big = para.repeat(Math.ceil(RICH_HTML_LIMIT / para.length) + 1);
  assert.equal(htmlBodyText(small, 1 << 20).converter, 'rich');
  const r = htmlBodyText(big, 1 << 20);
  assert.equal(r.converter, 'plain');
  assert.match(r.text, /^Motion detected on camera seven in zone three\n\nMotion/);
  assert.ok(stripHtml(big, 100).length <= 100);
});

test('hostile shapes: attribute soup, tag and entity floods, unterminated tags', T, async () => {
  const soup = await parseMessage(htmlMail('<p>first</p><div ' + 'a="1" '.repeat(200_000) + '>after soup</div>'));
  assert.match(soup.text, /first\s+after soup/);
  const tags = await parseMessage(htmlMail('<b>x</b>'.repeat(200_000) + '<p>end</p>'));
  assert.ok(tags.limitsExceeded.includes('html_plain'));
  assert.match(tags.text, /^x+\n\nend$/);
  const ents = await parseMessage(htmlMail('Motion ' + '&amp;&#x41;&#65;&nbsp;&bogus;'.repeat(50_000)));
  assert.match(ents.text, /^Motion &AA &bogus;&AA &bogus;/);
  assert.equal(stripHtml('alarm <div class="never closed'), 'alarm');
  assert.equal(stripHtml('a <!-- never closed'), 'a');
  assert.equal(stripHtml('1 < 2 <SCRIPT>x<y</Script>ok'), '1 < 2 ok');
});

test('entities: numeric and common named ones decoded, invalid code points replaced, unknown names kept', T, () => {
  assert.equal(decodeEntities('&amp;&lt;&gt;&quot;&#65;&#x42;&auml;&nbsp;'), '&<>"ABä\u00a0');
  assert.equal(decodeEntities('&#xD800;&#0;&#1114112;'), '\ufffd\ufffd\ufffd');
  assert.equal(decodeEntities('&bogus; &amp'), '&bogus; &amp');
});

test('long runs of text are decoded in windows without changing the text', T, () => {
  assert.equal(stripHtml('<p>' + 'word '.repeat(100_000) + '</p>'), ('word '.repeat(100_000)).trim());
  const oneWord = 'x'.repeat(200_000);
  assert.equal(stripHtml(oneWord), oneWord, 'a word longer than a window is not split');
  for (let pad = 65_500; pad < 65_540; pad += 3) {
    assert.equal(stripHtml('a'.repeat(pad) + '&amp;&eacute;' + 'b'.repeat(100)), 'a'.repeat(pad) + '&é' + 'b'.repeat(100), `pad ${pad}`);
  }
});

test('mailparser is fed at most about maxHtmlBytes of an HTML part, and the cut is reported', T, async () => {
  const m = await parseMessage(htmlMail('<p>first words</p>' + '<b>x</b>\r\n'.repeat(400_000)), { maxHtmlBytes: 64 * 1024, maxTextBytes: 16 * 1024 });
  assert.ok(m.limitsExceeded.includes('html'), m.limitsExceeded.join());
  assert.match(m.text, /^first words\n/);
  assert.ok(m.text.length <= 16 * 1024);
  const plain = await parseMessage(Buffer.from('Subject: p\r\nContent-Type: text/plain\r\n\r\n' + 'line of text\r\n'.repeat(200_000)), { maxHtmlBytes: 64 * 1024, maxTextBytes: 64 * 1024 });
  assert.ok(plain.limitsExceeded.includes('text'));
  assert.ok(plain.text.startsWith('line of text\n') && plain.text.length <= 64 * 1024);
});

test('capTextParts passes an inline text part\'s first bytes to the parser and drops the rest', T, async () => {
  const written: string[] = [];
  const cuts: string[] = [];
  const node = { contentType: 'text/html', disposition: 'inline' };
  const attachment = { contentType: 'image/jpeg', disposition: 'attachment' };
  const stub = { curnode: node as object, processChunk: (d: { value?: Buffer }, done: () => void) => { written.push(d.value?.toString() ?? ''); done(); } };
  capTextParts(stub as unknown as MailParser, 10, (t) => cuts.push(t));
  const feed = (value: string) => new Promise<void>((resolve) => stub.processChunk({ type: 'body', value: Buffer.from(value) } as never, resolve));
  await feed('123456');
  await feed('789abc');
  await feed('def');
  stub.curnode = attachment;
  await feed('attachment bytes are not text');
  assert.deepEqual(written, ['123456', '789a', 'attachment bytes are not text']);
  assert.deepEqual(cuts, ['text/html']);
});
