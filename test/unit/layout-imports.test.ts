// Enforces the layout of src/ that docs/architecture.md describes: no import cycles, which folder may import which, and a one-line header comment on every file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** One relative import, by path under src/. `dynamic` is an import() call; type-only imports are `static` like any other. */
interface Edge { to: string; dynamic: boolean; line: number }
interface Scan { edges: Map<string, Edge[]>; problems: string[] }

/**
 * The relative imports of each file (keys are paths under src/, with '/'): `import ... from`, `import type`,
 * `export ... from`, `import('...')` and type-level `import('...').T`. Problems: a specifier that resolves to nothing,
 * and an import() whose argument is not a string literal (it could reach anything, so the rules could not hold).
 */
function scanImports(files: Map<string, string>, exists: (rel: string) => boolean): Scan {
  const edges = new Map<string, Edge[]>();
  const problems: string[] = [];
  for (const [file, text] of files) {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const out: Edge[] = [];
    const add = (spec: ts.Expression | undefined, dynamic: boolean, at: ts.Node) => {
      const line = sf.getLineAndCharacterOfPosition(at.getStart(sf)).line + 1;
      if (!spec || !ts.isStringLiteralLike(spec)) {
        if (dynamic) problems.push(`${file}:${line}: import() of a computed specifier`);
        return;
      }
      if (!spec.text.startsWith('.')) return; // a package or node: built-in
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec.text.replace(/\.js$/, '.ts')));
      if (to.endsWith('.ts') && files.has(to)) out.push({ to, dynamic, line });
      else if (to.endsWith('.ts') || !exists(to)) problems.push(`${file}:${line}: '${spec.text}' resolves to no file (${to})`);
      // else: a data file such as ../package.json
    };
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier, false, node);
      else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression, false, node);
      else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, false, node);
      else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], true, node);
      ts.forEachChild(node, visit);
    };
    visit(sf);
    edges.set(file, out);
  }
  return { edges, problems };
}

/** One cycle per strongly connected component (Tarjan), each as a path that ends where it starts. */
function findCycles(edges: Map<string, Edge[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of edges.get(v) ?? []) {
      if (!index.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(v, Math.min(low.get(v)!, index.get(to)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (edges.get(v) ?? []).some((e) => e.to === v)) components.push(component);
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) strong(v);
  // A concrete cycle inside each component: the shortest way from its first file back to itself.
  return components.map((component) => {
    const inside = new Set(component);
    const start = [...component].sort()[0]!;
    return shortestPath(edges, start, (to) => to === start, (e) => inside.has(e.to)) ?? [start, start];
  });
}

/** The shortest import chain from `from` to a file that `isGoal` accepts, following only the edges `follow` allows; null if none. */
function shortestPath(edges: Map<string, Edge[]>, from: string, isGoal: (file: string) => boolean, follow: (e: Edge) => boolean = () => true): string[] | null {
  const parent = new Map<string, string>();
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const e of edges.get(v) ?? []) {
      if (!follow(e)) continue;
      if (isGoal(e.to)) {
        const chain = [e.to, v];
        for (let p = parent.get(v); p !== undefined; p = parent.get(p)) chain.push(p);
        return chain.reverse();
      }
      if (e.to !== from && !parent.has(e.to)) {
        parent.set(e.to, v);
        queue.push(e.to);
      }
    }
  }
  return null;
}

/** A file's folder or top-level module as the rules name it: 'pop3/' for src/pop3/**, 'agent.ts' for src/agent.ts. */
const unitOf = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/') + 1) : file);

/** What each folder must not reach: through any chain of imports (static, type-only or dynamic), not only directly. */
const MUST_NOT_REACH: Record<string, string[]> = {
  'pop3/': ['mailbox/', 'mqtt/', 'alerts/', 'rules/', 'agent.ts', 'cli/'],
  'rules/': ['mailbox/', 'mqtt/', 'alerts/', 'agent.ts', 'cli/'],
  'alerts/': ['mailbox/', 'mqtt/', 'cli/'],
  'message/': ['mailbox/', 'mqtt/', 'alerts/', 'rules/', 'cli/'],
};

/** Every broken layout rule, each with the import chain that breaks it. */
function layoutViolations(edges: Map<string, Edge[]>): string[] {
  const out: string[] = [];
  for (const file of [...edges.keys()].sort()) {
    const unit = unitOf(file);
    for (const banned of MUST_NOT_REACH[unit] ?? []) {
      const chain = shortestPath(edges, file, (to) => unitOf(to) === banned);
      if (chain) out.push(`${unit} must not import ${banned}: ${chain.join(' -> ')}`);
    }
    // The command line is the top: only cli/ itself imports it.
    for (const e of edges.get(file) ?? []) {
      if (unit !== 'cli/' && unitOf(e.to) === 'cli/') out.push(`only cli/ imports cli/: ${file}:${e.line} -> ${e.to}`);
    }
  }
  // Home Assistant is an extension: agent.ts imports none of it, and nothing agent.ts loads statically does either;
  // it comes in only through a dynamic import() elsewhere (extensions.ts, with homeassistant.discovery on).
  if (edges.has('agent.ts')) {
    for (const e of edges.get('agent.ts')!) {
      if (unitOf(e.to) === 'homeassistant/') out.push(`agent.ts must not import homeassistant/: agent.ts:${e.line} -> ${e.to}`);
    }
    const chain = shortestPath(edges, 'agent.ts', (to) => unitOf(to) === 'homeassistant/', (e) => !e.dynamic);
    if (chain) out.push(`agent.ts must not load homeassistant/ statically: ${chain.join(' -> ')}`);
  }
  return out;
}

/** The header rule: line 1 is `// ` and a sentence; if line 2 is a comment too, it is a bare `//` (the header does not run on). */
function headerProblem(text: string): string | null {
  const [first = '', second = ''] = text.split('\n', 2);
  if (!/^\/\/ \S.{10,}$/.test(first.trimEnd())) return `does not open with a one-line // header comment (line 1: ${JSON.stringify(first.slice(0, 60))})`;
  if (/^\/\/\s*\S/.test(second)) return `header runs on to line 2 (${JSON.stringify(second.slice(0, 60))}): keep it to one line, then a bare // before any detail`;
  return null;
}

function readSrc(): Map<string, string> {
  const files = new Map<string, string>();
  const names = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).map((f) => f.split(path.sep).join('/'));
  for (const rel of names.filter((f) => f.endsWith('.ts')).sort()) files.set(rel, readFileSync(path.join(SRC, rel), 'utf8'));
  return files;
}

const files = readSrc();
const scan = scanImports(files, (rel) => existsSync(path.join(SRC, rel)));

test('every relative import in src/ resolves, and every import() names its module literally', () => {
  assert.ok(files.size > 50 && files.has('agent.ts') && files.has('pop3/client.ts'), `read src/ (${files.size} files)`);
  assert.deepEqual(scan.problems, [], scan.problems.join('\n'));
});

test('src/ has no import cycles', () => {
  const cycles = findCycles(scan.edges).map((c) => c.join(' -> '));
  assert.deepEqual(cycles, [], `import cycles (break each by moving what both sides need into a module of its own):\n${cycles.join('\n')}`);
});

test('folder import rules hold (pop3/, rules/, alerts/, message/, cli/, agent.ts and homeassistant/)', () => {
  assert.ok([...scan.edges.values()].some((es) => es.length), 'imports were found at all');
  const broken = layoutViolations(scan.edges);
  assert.deepEqual(broken, [], `layout rules broken (docs/architecture.md):\n${broken.join('\n')}`);
});

test('every src file opens with a one-line // header comment', () => {
  const bad = [...files].flatMap(([f, text]) => {
    const p = headerProblem(text);
    return p ? [`${f}: ${p}`] : [];
  });
  assert.deepEqual(bad, [], bad.join('\n'));
});

// The checker itself, on made-up files: each kind of import is seen, and each rule can fail.
test('the checker sees every kind of import and reports cycles, rule breaks and bad headers', () => {
  const fake = new Map<string, string>([
    ['pop3/a.ts', "// A.\nimport type { X } from '../state/s.js';\nexport { y } from './b.js';\n"],
    ['pop3/b.ts', "// B.\nexport const y = async () => (await import('./a.js')).z;\nlet t: import('../config/c.js').T;\n"],
    ['state/s.ts', "// S.\nimport { m } from '../mailbox/m.js';\n"],
    ['mailbox/m.ts', "// M.\nimport '../cli/x.js';\n"],
    ['cli/x.ts', "// X.\n"],
    ['config/c.ts', "// C.\nconst n = 'a'; await import(n); import '../missing.js';\n"],
    ['agent.ts', "// Agent.\nimport './extensions.js';\n"],
    ['extensions.ts', "// Ext.\nimport '../src/homeassistant/h.js';\n"],
    ['homeassistant/h.ts', '// H.\n'],
  ]);
  const s = scanImports(fake, () => false);
  const targets = (f: string) => s.edges.get(f)!.map((e) => `${e.to}${e.dynamic ? ' (dynamic)' : ''}`);
  assert.deepEqual(targets('pop3/a.ts'), ['state/s.ts', 'pop3/b.ts']);
  assert.deepEqual(targets('pop3/b.ts'), ['pop3/a.ts (dynamic)', 'config/c.ts']);
  assert.equal(s.problems.length, 3, s.problems.join('\n'));
  assert.match(s.problems.join('\n'), /config\/c\.ts:2: import\(\) of a computed specifier/);
  assert.match(s.problems.join('\n'), /'\.\.\/missing\.js' resolves to no file/);
  assert.match(s.problems.join('\n'), /extensions\.ts:2: '\.\.\/src\/homeassistant\/h\.js' resolves to no file/);
  // Resolve that one properly and look at the rules.
  fake.set('extensions.ts', "// Ext.\nimport './homeassistant/h.js';\n");
  const edges = scanImports(fake, () => false).edges;
  assert.deepEqual(findCycles(edges), [['pop3/a.ts', 'pop3/b.ts', 'pop3/a.ts']]);
  const broken = layoutViolations(edges);
  assert.ok(broken.includes('pop3/ must not import mailbox/: pop3/a.ts -> state/s.ts -> mailbox/m.ts'), broken.join('\n'));
  assert.ok(broken.includes('pop3/ must not import cli/: pop3/a.ts -> state/s.ts -> mailbox/m.ts -> cli/x.ts'), broken.join('\n'));
  assert.ok(broken.includes('only cli/ imports cli/: mailbox/m.ts:2 -> cli/x.ts'), broken.join('\n'));
  assert.ok(broken.includes('agent.ts must not load homeassistant/ statically: agent.ts -> extensions.ts -> homeassistant/h.ts'), broken.join('\n'));
  fake.set('extensions.ts', "// Ext.\nexport const load = () => import('./homeassistant/h.js');\n");
  assert.ok(!layoutViolations(scanImports(fake, () => false).edges).some((v) => v.startsWith('agent.ts')), 'a dynamic import() elsewhere is the way in');
  fake.set('agent.ts', "// Agent.\nexport const load = () => import('./homeassistant/h.js');\n");
  assert.ok(layoutViolations(scanImports(fake, () => false).edges).includes('agent.ts must not import homeassistant/: agent.ts:2 -> homeassistant/h.ts'));
  assert.equal(headerProblem('import x from "y";\n'), 'does not open with a one-line // header comment (line 1: "import x from \\"y\\";")');
  assert.match(headerProblem('// Why this file exists, in a sentence\n// and more of it.\n') ?? '', /runs on to line 2/);
  assert.equal(headerProblem('// Why this file exists, in a sentence.\n//\n// Detail.\n'), null);
});
