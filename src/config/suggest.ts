// "Did you mean" hints for unknown config keys: finds the keys the schema allows at a path and the closest one.
import type { $ZodType } from 'zod/v4/core';

interface DefLike {
  type: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  element?: unknown;
  options?: unknown[];
  getter?: () => unknown;
}

function defOf(schema: unknown): DefLike | undefined {
  return (schema as { _zod?: { def?: DefLike } } | undefined)?._zod?.def;
}

/** Peel wrappers (default, optional, pipe/transform, lazy...) and return the object schemas a value at this level may match. */
function objectsAt(schema: unknown, depth = 0): DefLike[] {
  const def = defOf(schema);
  if (!def || depth > 20) return [];
  switch (def.type) {
    case 'object':
      return [def];
    case 'pipe':
      return objectsAt(def.in, depth + 1);
    case 'union':
      return (def.options ?? []).flatMap((o) => objectsAt(o, depth + 1));
    case 'lazy':
      return def.getter ? objectsAt(def.getter(), depth + 1) : [];
    default:
      return def.innerType !== undefined ? objectsAt(def.innerType, depth + 1) : [];
  }
}

function childSchemas(schema: unknown, seg: PropertyKey, depth = 0): unknown[] {
  const def = defOf(schema);
  if (!def || depth > 20) return [];
  switch (def.type) {
    case 'object': {
      const child = def.shape?.[String(seg)];
      return child === undefined ? [] : [child];
    }
    case 'array':
      return typeof seg === 'number' && def.element !== undefined ? [def.element] : [];
    case 'record':
      return [];
    case 'pipe':
      return childSchemas(def.in, seg, depth + 1);
    case 'union':
      return (def.options ?? []).flatMap((o) => childSchemas(o, seg, depth + 1));
    case 'lazy':
      return def.getter ? childSchemas(def.getter(), seg, depth + 1) : [];
    default:
      return def.innerType !== undefined ? childSchemas(def.innerType, seg, depth + 1) : [];
  }
}

/** Keys the schema allows on the object at `path` (empty when it cannot tell). */
export function knownKeysAt(schema: $ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown[] = [schema];
  for (const seg of path) current = current.flatMap((s) => childSchemas(s, seg));
  const keys = new Set<string>();
  for (const s of current) for (const obj of objectsAt(s)) for (const k of Object.keys(obj.shape ?? {})) keys.add(k);
  return [...keys];
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, '');

/** The known key closest to `key` (camelCase, dashes and small typos forgiven), or undefined. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const score = squash(k) === squash(key) ? 0 : editDistance(key.toLowerCase(), k.toLowerCase());
    if (score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  const limit = Math.max(1, Math.floor(key.length / 3));
  return bestScore <= limit ? best : undefined;
}
