// V8's optimizing compilers held back until there is work: an idle poll then never pulls their code into memory.
//
// Why (measured with scripts/bench/memory-w4.ts, Node 20, idle one-shot poll): start-up alone (module loading, the
// config, one TLS session) makes V8 optimize one function (Node's path normalizeString, hot from require()), and
// that single TurboFan compile makes 3.6 MiB more of the node executable resident (idle `once` 61.8 -> 58.0 MiB
// without it); Sparkplug, the baseline compiler, another 1.3 MiB. Neither pays off before mail is parsed: the poller
// calls newMessagesSeen() when a poll finds new mail, and once that is work enough (TIER_UP_AT: a first poll of 1,000
// messages is) V8 tiers up as usual; a few new messages now and then are left to the interpreter. Like the heap
// policy, POP2MQTT_HEAP_POLICY=off leaves V8's defaults, and a compiler flag the process was started with (execArgv,
// NODE_OPTIONS) wins.
import v8 from 'node:v8';
import { v8FlagsGiven, type V8FlagsInput } from './v8-flags-given.js';

export interface CompilerTierInput extends V8FlagsInput {
  arch?: string;
}

/** [flag while idle, V8's default restored for work, flag names that mean the user chose this compiler's setting]. */
const TIERS: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['--no-turbofan', '--turbofan', ['turbofan', 'opt', 'max-opt']],
  ['--no-sparkplug', '--sparkplug', ['sparkplug']],
];
/** Flags that set every tier at once: the user's choice wins for all of them. */
const ALL_TIERS = ['lite-mode', 'jitless'];

/** `--no_max_opt=2` -> `max-opt`: the name of each flag given, however spelt. */
function flagNames(args: readonly string[]): Set<string> {
  return new Set(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!.replace(/_/g, '-').replace(/^no-/, '')));
}

/** Architectures where Sparkplug is on by default in those versions (and measured: x64). */
const SPARKPLUG_ARCHES = ['x64', 'arm64'];

/** The [idle, work] flag pairs deferCompilers() would set for this process (empty when switched off or not applicable). */
export function deferredCompilerFlags(o: CompilerTierInput = {}): Array<[string, string]> {
  // On the measured V8 versions (v8FlagsGiven) both compilers are on by default.
  const args = v8FlagsGiven(o);
  if (!args) return [];
  const given = flagNames(args);
  if (ALL_TIERS.some((n) => given.has(n))) return [];
  const arch = o.arch ?? process.arch;
  return TIERS.filter(([idle, , own]) => !own.some((n) => given.has(n)) && (idle !== '--no-sparkplug' || SPARKPLUG_ARCHES.includes(arch))).map(
    ([idle, work]) => [idle, work],
  );
}

let deferred: Array<[string, string]> = [];

/** At start: hold back the optimizing compilers (see above); returns the flags set. */
export function deferOptimizingCompilers(o: CompilerTierInput = {}): string[] {
  deferred = deferredCompilerFlags(o);
  if (deferred.length) v8.setFlagsFromString(deferred.map(([idle]) => idle).join(' '));
  return deferred.map(([idle]) => idle);
}

/** There is work (new mail): V8's own tiering from now on. Cheap and idempotent; returns the flags set, if any. */
export function enableOptimizingCompilers(): string[] {
  if (!deferred.length) return [];
  const flags = deferred.map(([, work]) => work);
  deferred = [];
  v8.setFlagsFromString(flags.join(' '));
  return flags;
}

/**
 * How much new mail is work enough for V8's optimizing compilers: a poll with `poll` new messages or more (a first poll
 * of a full mailbox), or `total` since start (a busy mailbox). Fewer are parsed by the interpreter, and the compilers'
 * code is never pulled into memory: a daemon that alerts a message now and then stays as small as an idle one.
 */
export const TIER_UP_AT = { poll: 20, total: 500 } as const;
let messagesSeen = 0;

/** A poll found `n` new messages: enables the compilers once TIER_UP_AT is reached; returns the flags set, if any. */
export function newMessagesSeen(n: number): string[] {
  messagesSeen += n;
  return n >= TIER_UP_AT.poll || messagesSeen >= TIER_UP_AT.total ? enableOptimizingCompilers() : [];
}
