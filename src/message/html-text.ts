// HTML body to matchable text in bounded time and memory: html-to-text for ordinary mail, one linear pass for oversized or deeply nested HTML.
import { convert as htmlToText } from 'html-to-text';

/**
 * HTML longer than this (in characters) is not given to html-to-text. Its DOM costs about 150 bytes of heap per byte
 * of HTML: 128 KiB of tag soup peaks near 20 MB and 1 MiB near 80 MB (measured, html-to-text 10.0.1).
 */
export const RICH_HTML_LIMIT = 128 * 1024;
/**
 * HTML nested deeper than this is not given to html-to-text: htmlparser2 shifts its open-element stack at every
 * start tag (cost ∝ depth), so 400,000 nested <div> take 47 s, and html-to-text's recursive walk overflows the stack
 * near 2,000 levels. Real mail nests some 10–40 levels.
 */
export const RICH_HTML_DEPTH = 128;

/** Elements with no end tag, and those an opening sibling closes: neither makes HTML deeper. */
const FLAT = new Set([
  'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr',
  'p', 'li', 'dt', 'dd', 'tr', 'td', 'th', 'option',
]);

/** Elements that start a new line in the plain conversion. */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer',
  'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table',
  'tbody', 'td', 'tfoot', 'th', 'thead', 'title', 'tr', 'ul',
]);
/** Elements whose content is not text. */
const SKIP_CONTENT = new Set(['script', 'style', 'head', 'template', 'noscript']);

/** A tag found at `start`: its lower-case name, whether it closes, and the offset after its ">" (or -1: unterminated). */
function readTag(html: string, start: number): { name: string; closing: boolean; selfClosing: boolean; end: number } | null {
  let i = start + 1;
  const closing = html.charCodeAt(i) === 0x2f; // '/'
  if (closing) i++;
  const nameStart = i;
  while (i < html.length) {
    const c = html.charCodeAt(i);
    const alnum = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x3a;
    if (!alnum) break;
    i++;
  }
  if (i === nameStart) return null; // "<" not starting a tag: text
  const gt = html.indexOf('>', i);
  return {
    name: html.slice(nameStart, Math.min(i, nameStart + 32)).toLowerCase(),
    closing,
    selfClosing: gt > 0 && html.charCodeAt(gt - 1) === 0x2f,
    end: gt < 0 ? -1 : gt + 1,
  };
}

/**
 * The nesting depth of the HTML, counted in one pass over its tags (start tags deepen, end tags of the same name
 * come back up; void and sibling-closed elements do not count). Stops counting once `stopAt` is passed. An
 * approximation of what a parser would build, good enough to pick a converter.
 */
export function htmlDepth(html: string, stopAt = Infinity): number {
  const open: string[] = [];
  let max = 0;
  let i = html.indexOf('<');
  while (i >= 0) {
    if (html.startsWith('<!--', i)) {
      const e = html.indexOf('-->', i + 4);
      if (e < 0) break;
      i = html.indexOf('<', e + 3);
      continue;
    }
    const tag = readTag(html, i);
    if (!tag) {
      i = html.indexOf('<', i + 1);
      continue;
    }
    if (tag.end < 0) break;
    if (tag.closing) {
      // close up to the matching element, looking a few levels down only (a stray end tag must not cost a scan)
      for (let k = open.length - 1; k >= Math.max(0, open.length - 8); k--) {
        if (open[k] === tag.name) {
          open.length = k;
          break;
        }
      }
    } else if (!tag.selfClosing && !FLAT.has(tag.name)) {
      open.push(tag.name);
      if (open.length > max) {
        max = open.length;
        if (max > stopAt) return max;
      }
    }
    i = html.indexOf('<', tag.end);
  }
  return max;
}

const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', shy: '', zwnj: '', zwj: '', copy: '©', reg: '®',
  trade: '™', euro: '€', pound: '£', yen: '¥', cent: '¢', deg: '°', middot: '·', bull: '•', hellip: '…', ndash: '–',
  mdash: '—', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', times: '×', divide: '÷',
  auml: 'ä', ouml: 'ö', uuml: 'ü', Auml: 'Ä', Ouml: 'Ö', Uuml: 'Ü', szlig: 'ß', eacute: 'é', egrave: 'è', ecirc: 'ê',
  aacute: 'á', agrave: 'à', acirc: 'â', iacute: 'í', oacute: 'ó', ocirc: 'ô', uacute: 'ú', ccedil: 'ç', ntilde: 'ñ',
  Eacute: 'É', Agrave: 'À', Ccedil: 'Ç', Ntilde: 'Ñ', aring: 'å', Aring: 'Å', oslash: 'ø', Oslash: 'Ø', aelig: 'æ',
};
const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));?/g;

/** Decode character references (all numeric ones, the common named ones); unknown names stay as written. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY, (whole, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name !== undefined) return whole.endsWith(';') && NAMED[name] !== undefined ? NAMED[name]! : whole;
    const cp = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : '\ufffd';
  });
}

/**
 * HTML to text in one linear pass: tags dropped (block elements start a line), script/style/head content and
 * comments dropped, entities decoded, whitespace collapsed. Stops once `maxChars` of text are out.
 */
export function stripHtml(html: string, maxChars = Infinity): string {
  const chunks: string[] = [];
  let pieces: string[] = [];
  let outLen = 0;
  let pendingSpace = false;
  let pendingLines = 0;
  const emit = (raw: string) => {
    // a long run of text is taken in windows cut at whitespace, so decoding and splitting never hold all of it
    let from = 0;
    while (raw.length - from > TEXT_WINDOW && outLen < maxChars) {
      let cut = from + TEXT_WINDOW;
      const ws = raw.slice(cut - 256, cut).search(/[ \t\n\r\f][^ \t\n\r\f]*$/);
      if (ws >= 0) cut = cut - 256 + ws;
      else {
        const amp = raw.lastIndexOf('&', cut);
        if (amp > cut - 40) cut = amp; // do not cut a character reference in two
      }
      emitWindow(raw.slice(from, cut));
      from = cut;
    }
    if (from < raw.length) emitWindow(from === 0 ? raw : raw.slice(from));
  };
  const emitWindow = (raw: string) => {
    const words = decodeEntities(raw).split(/[ \t\n\r\f]+/);
    for (let w = 0; w < words.length && outLen < maxChars; w++) {
      const word = words[w]!;
      if (w > 0) pendingSpace = true;
      if (!word) continue;
      if (outLen > 0 && pendingLines > 0) pieces.push(pendingLines > 1 ? '\n\n' : '\n');
      else if (outLen > 0 && pendingSpace) pieces.push(' ');
      pendingLines = 0;
      pendingSpace = false;
      pieces.push(word);
      outLen += word.length + 1;
      if (pieces.length >= 4096) {
        chunks.push(pieces.join(''));
        pieces = [];
      }
    }
  };
  let pos = 0;
  while (pos < html.length && outLen < maxChars) {
    const lt = html.indexOf('<', pos);
    if (lt < 0) {
      emit(html.slice(pos));
      break;
    }
    if (lt > pos) emit(html.slice(pos, lt));
    if (html.startsWith('<!--', lt)) {
      const e = html.indexOf('-->', lt + 4);
      if (e < 0) break;
      pos = e + 3;
      continue;
    }
    if (html.startsWith('<!', lt) || html.startsWith('<?', lt)) { // doctype, CDATA, processing instruction
      const e = html.indexOf('>', lt + 2);
      if (e < 0) break;
      pos = e + 1;
      continue;
    }
    const tag = readTag(html, lt);
    if (!tag) {
      emit('<');
      pos = lt + 1;
      continue;
    }
    if (tag.end < 0) break; // an unterminated tag ends the text
    pos = tag.end;
    if (BLOCK.has(tag.name)) pendingLines = Math.max(pendingLines, tag.name === 'p' && !tag.closing ? 2 : 1);
    if (tag.name === 'li' && !tag.closing) emit('* '); // as html-to-text lists items
    if (!tag.closing && !tag.selfClosing && SKIP_CONTENT.has(tag.name)) {
      const endTag = new RegExp(`</${tag.name}`, 'gi'); // a literal: scans what it skips once
      endTag.lastIndex = pos;
      const e = endTag.exec(html);
      if (!e) break;
      pos = e.index;
    }
  }
  chunks.push(pieces.join(''));
  const text = chunks.join('');
  return text.length > maxChars ? text.slice(0, maxChars) : text;
}

/** The longest run of text decoded and split at once by the stripper. */
const TEXT_WINDOW = 64 * 1024;

/** How an HTML body was turned into text. */
export interface HtmlText {
  text: string;
  /** 'rich': html-to-text; 'plain': the linear stripper, because the HTML was larger or deeper than the limits. */
  converter: 'rich' | 'plain';
}

const RICH_OPTIONS = {
  wordwrap: false as const,
  selectors: [{ selector: 'img', format: 'skip' }, { selector: 'a', options: { ignoreHref: true } }],
};

/**
 * Convert an HTML body to text: html-to-text when the HTML is at most RICH_HTML_LIMIT characters and RICH_HTML_DEPTH
 * deep (its output is what rules were written against), the linear stripper otherwise or if html-to-text throws.
 * Either way the cost is bounded by the input size. Non-breaking spaces become spaces (a typed space matches them).
 */
export function htmlBodyText(html: string, maxChars: number): HtmlText {
  let text: string | undefined;
  let converter: HtmlText['converter'] = 'plain';
  if (html.length <= RICH_HTML_LIMIT && htmlDepth(html, RICH_HTML_DEPTH) <= RICH_HTML_DEPTH) {
    try {
      text = htmlToText(html, RICH_OPTIONS);
      converter = 'rich';
    } catch {
      text = undefined;
    }
  }
  text ??= stripHtml(html, maxChars);
  return { text: text.replace(/\u00a0/g, ' '), converter };
}
