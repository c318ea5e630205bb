// The V8 flags the process was started with, and whether pop2mqtt may set its own: one reader for heap-policy.ts and compiler-tiers.ts.

export interface V8FlagsInput {
  env?: NodeJS.ProcessEnv;
  execArgv?: readonly string[];
  v8Version?: string;
}

/** V8 versions pop2mqtt's flags were measured on (Node 20: 11.3, Node 22: 12.4); other versions are left alone. */
const MEASURED_V8 = /^1[12]\./;

/**
 * The arguments given at start (execArgv, then NODE_OPTIONS split on white space), so that a flag the user chose wins;
 * undefined when pop2mqtt must leave V8's flags alone: POP2MQTT_HEAP_POLICY=off, or a V8 version not measured.
 */
export function v8FlagsGiven(o: V8FlagsInput = {}): string[] | undefined {
  const env = o.env ?? process.env;
  if ((env.POP2MQTT_HEAP_POLICY ?? '').toLowerCase() === 'off') return undefined;
  if (!MEASURED_V8.test(o.v8Version ?? process.versions.v8)) return undefined;
  return [...(o.execArgv ?? process.execArgv), ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
}
