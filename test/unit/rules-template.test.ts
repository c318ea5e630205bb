// Tests of templates: substitution only, the json filter, and topic safety against hostile values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseTemplate, renderTemplate, renderTopic, validateTopicTemplate, TemplateError, TOPIC_VALUE_LIMIT } from '../../src/rules/template.js';

test('renderTemplate substitutes names, dotted names, header.* (case-insensitive) and nothing else', { timeout: 5000 }, () => {
  const vars = { camera: 'Camera 3', 'from.address': 'nvr@x', 'header.x-foo': 'bar', size: 42 };
  assert.equal(renderTemplate('{{camera}} from {{ from.address }} {{header.X-Foo}} {{size}} {{missing}}!', vars), 'Camera 3 from nvr@x bar 42 !');
  assert.equal(renderTemplate('no placeholders {single} }}', vars), 'no placeholders {single} }}');
  assert.equal(renderTemplate('{{camera}}', (n) => (n === 'camera' ? 'via function' : undefined)), 'via function');
  // no code: expressions are not evaluated, they are rejected
  assert.throws(() => parseTemplate('{{camera + 1}}'), TemplateError);
  assert.throws(() => parseTemplate('{{constructor.constructor}}'), TemplateError);
  assert.throws(() => parseTemplate('{{x|upper}}'), TemplateError);
  assert.throws(() => parseTemplate('{{x'), TemplateError);
  // prototype keys are not reachable
  assert.equal(renderTemplate('{{toString}}{{__proto__}}', {}), '');
});

test('the json filter always yields a JSON literal', { timeout: 5000 }, () => {
  const vars = { s: 'a "quoted"\n\u0000 value', n: 7, b: true };
  const out = renderTemplate('{"s":{{s|json}},"n":{{n|json}},"b":{{b|json}},"m":{{missing|json}}}', vars);
  assert.deepEqual(JSON.parse(out), { s: 'a "quoted"\n\u0000 value', n: 7, b: true, m: '' });
});

test('topic values cannot add levels, wildcards, NUL or control characters', { timeout: 5000 }, () => {
  const t = (v: string) => renderTopic('alerts/{{x}}', { x: v });
  assert.equal(t('a/b'), 'alerts/a_b');
  assert.equal(t('#'), 'alerts/_');
  assert.equal(t('+/+'), 'alerts/___');
  assert.equal(t('../../etc'), 'alerts/.._.._etc');
  assert.equal(t('..'), 'alerts/_');
  assert.equal(t('.'), 'alerts/_');
  assert.equal(t(''), 'alerts/_');
  assert.equal(t('nul\u0000byte\r\nctl\u001b'), 'alerts/nul_byte__ctl_');
  assert.equal(t('\u2028sep\u0085'), 'alerts/_sep_');
  assert.equal(t('bad \uD800 surrogate'), 'alerts/bad _ surrogate');
  assert.equal(t('Kamera Süd'), 'alerts/Kamera Süd');
  assert.equal(t('x'.repeat(70_000)).length, 'alerts/'.length + TOPIC_VALUE_LIMIT);
  assert.equal(renderTopic('{{x}}/a', { x: '/' }), '_/a');
  assert.equal(renderTopic('{{x}}', { x: undefined }), '_');
  assert.equal(renderTopic('a/{{x}}{{y}}', { x: '.', y: '.' }), 'a/_');
});

test('topic values lose Unicode format characters (bidi overrides, zero-width, tags) and C1 controls', { timeout: 5000 }, () => {
  const t = (v: string) => renderTopic('alerts/{{x}}', { x: v });
  // "Camera 3" shown as "Camera 3" in a UI but really reversed by U+202E / hidden by U+200B
  assert.equal(t('Camera\u202E3'), 'alerts/Camera_3');
  assert.equal(t('ga\u200Brage'), 'alerts/ga_rage');
  assert.equal(t('\u200C\u200D\u2060\u2066x\u2069\u061C\u00AD'), 'alerts/____x___');
  assert.equal(t('\uFEFFbom'), 'alerts/_bom');
  // a tag character is one code point outside the BMP: one "_", never half a surrogate pair
  assert.equal(t('a\u{E0041}b'), 'alerts/a_b');
  // every C1 control (U+0080-U+009F), and DEL
  for (let c = 0x7f; c <= 0x9f; c++) assert.equal(t(`a${String.fromCharCode(c)}b`), 'alerts/a_b', c.toString(16));
  // ordinary letters, digits and symbols of other scripts stay
  assert.equal(t('Kamera Süd – 東'), 'alerts/Kamera Süd – 東');
  // the literal text of a template is refused with such characters too
  assert.match(validateTopicTemplate('alerts/\u202Egarage') ?? '', /invisible format/);
  assert.match(validateTopicTemplate('alerts/a\u0085b') ?? '', /control/);
});

test('capping never splits a surrogate pair', { timeout: 5000 }, () => {
  const v = '😀'.repeat(100);
  const out = renderTopic('{{x}}', { x: v });
  assert.equal(Array.from(out).length, TOPIC_VALUE_LIMIT);
  assert.equal(Buffer.from(out, 'utf8').toString('utf8'), out);
});

test('property: for any value, a rendered topic stays under its literal prefix with clean levels', { timeout: 20000 }, () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 50 }), (a, b) => {
      const topic = renderTopic('base/{{a}}/x-{{b}}', { a, b });
      assert.ok(topic.startsWith('base/'));
      const levels = topic.split('/');
      assert.equal(levels.length, 3);
      assert.ok(levels[2]!.startsWith('x-'));
      for (const l of levels) {
        assert.ok(l !== '' && l !== '.' && l !== '..');
        assert.doesNotMatch(l, /[+#\u0000-\u001f\u007f]/);
      }
      assert.equal(Buffer.from(topic, 'utf8').toString('utf8'), topic); // well-formed
    }),
    { numRuns: 500 },
  );
});

test('validateTopicTemplate checks the literal text only', { timeout: 5000 }, () => {
  assert.equal(validateTopicTemplate('alerts/{{x}}'), null);
  assert.equal(validateTopicTemplate('{{x}}'), null);
  assert.notEqual(validateTopicTemplate('/a'), null);
  assert.notEqual(validateTopicTemplate('a/#'), null);
  assert.notEqual(validateTopicTemplate('a/+'), null);
  assert.notEqual(validateTopicTemplate('a//b'), null);
  assert.notEqual(validateTopicTemplate('a/\u0000'), null);
  assert.notEqual(validateTopicTemplate('a/./b'), null);
});
