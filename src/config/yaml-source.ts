// Reads config YAML into a document that remembers where every key is, so errors can name the line.
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node, Scalar, ScalarTag } from 'yaml';
import type { ConfigIssue } from './errors.js';
import { formatPath } from './errors.js';

/** The value of a `!secret name` tag before it is looked up in secrets.yaml. */
export class SecretRef {
  constructor(readonly name: string) {}
}

const secretTag: ScalarTag = {
  tag: '!secret',
  identify: (v: unknown) => v instanceof SecretRef,
  resolve: (str: string) => new SecretRef(str.trim()),
};

export type PathSegment = string | number;

export interface YamlSource {
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** Line of the node at `path`, or of its nearest ancestor present in the file. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/** Parse YAML; syntax errors and unknown tags come back as issues with line and column. */
export function parseYaml(text: string): { source?: YamlSource; issues: ConfigIssue[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    customTags: [secretTag],
    prettyErrors: false,
    merge: true,
    uniqueKeys: true,
    keepSourceTokens: true,
  });
  const issues: ConfigIssue[] = [];
  const at = (pos: number) => lineCounter.linePos(pos);
  // One mistake often derails the parser for the rest of the file: report the first few only.
  const MAX_SYNTAX_ERRORS = 3;
  for (const e of doc.errors.slice(0, MAX_SYNTAX_ERRORS)) {
    const { line, col } = at(e.pos[0]);
    issues.push({ path: '', message: `YAML syntax error: ${e.message}`, line, column: col });
  }
  if (doc.errors.length > MAX_SYNTAX_ERRORS) {
    issues.push({ path: '', message: `(${doc.errors.length - MAX_SYNTAX_ERRORS} more YAML errors after these, probably caused by the first)` });
  }
  for (const w of doc.warnings) {
    const { line, col } = at(w.pos[0]);
    const msg = w.code === 'TAG_RESOLVE_FAILED' ? `${w.message} (only !secret is supported)` : w.message;
    issues.push({ path: '', message: `YAML: ${msg}`, line, column: col });
  }
  if (issues.length) return { issues };

  const lines = new Map<string, number>();
  walkDocument(doc, (node, path, keyNode) => {
    const pos = keyNode?.range?.[0] ?? node?.range?.[0];
    if (pos !== undefined) lines.set(formatPath(path), at(pos).line);
  });
  const lineOf = (path: readonly PropertyKey[]) => {
    for (let n = path.length; n >= 0; n--) {
      const hit = lines.get(formatPath(path.slice(0, n)));
      if (hit !== undefined) return hit;
    }
    return undefined;
  };
  return { source: { doc, lineCounter, lineOf }, issues };
}

/**
 * Visit every node of the document with its key path (map keys as strings, sequence indexes as numbers).
 * `keyNode` is the key scalar when the node is a map value. Aliases are visited but not entered
 * (their target is visited where it is defined); merge keys (`<<`) are skipped.
 */
export function walkDocument(
  doc: Document.Parsed,
  visit: (node: Node | null, path: PathSegment[], keyNode: Scalar | undefined) => void,
): void {
  const rec = (node: unknown, path: PathSegment[], keyNode: Scalar | undefined) => {
    visit((node ?? null) as Node | null, path, keyNode);
    if (isAlias(node)) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (key === '<<') continue;
        rec(pair.value, [...path, String(key)], isScalar(pair.key) ? pair.key : undefined);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => rec(item, [...path, i], undefined));
    }
  };
  rec(doc.contents, [], undefined);
}
