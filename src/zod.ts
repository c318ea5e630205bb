// zod's mini (functional) API with its English messages: tree-shakes to the validators the schemas use (about 40 KB, not zod's 760 KB).
import { config, globalRegistry, util } from 'zod/mini';
import type { $ZodCheck, $ZodType } from 'zod/v4/core';
import en from 'zod/v4/locales/en.js';

export * from 'zod/mini';
export type { $RefinementCtx as RefinementCtx } from 'zod/v4/core';

// zod classic installs the English messages by itself; the mini API leaves it to the application.
config(en());

/** `schema.describe(text)` of zod classic: a copy of the schema carrying the description (read by the JSON Schema). */
export function described<T extends $ZodType & { clone(): T }>(schema: T, description: string): T {
  const copy = schema.clone();
  globalRegistry.add(copy, { description });
  return copy;
}

/**
 * `schema.check(...checks)` that keeps the definition's getters, as zod classic's does: mini's copies the definition
 * with a spread, which reads an object's lazily defined keys (a recursive schema's `get all()`) before they exist.
 */
export function withChecks<T extends $ZodType & { clone(def: T['_zod']['def'], params: { parent: boolean }): T }>(
  schema: T,
  ...checks: $ZodCheck<T['_zod']['output']>[]
): T {
  const def = schema._zod.def;
  return schema.clone(util.mergeDefs(def, { checks: [...(def.checks ?? []), ...checks] }), { parent: true });
}
