// V8's optimizing compilers held back until there is work: an idle poll then never pulls their code into memory.
//
// Why (measured with scripts/bench/memory-w4.ts, Node 20, idle one-shot poll): start-up alone (module loading, the
// config, one TLS session) makes V8 optimize one function (Node's path normalizeString, hot from require()), and
// that single TurboFan compile makes 3.6 MiB more of the node executable resident (idle `once` 61.8 -> 58.0 MiB
// without it); Sparkplug, the baseline compiler, another 1.3 MiB. Neither pays off before mail is parsed: the poller
// calls newMessagesSeen() when a poll finds new mail, and once that is work enough V8 tiers up: Sparkplug at
// TIER_UP_AT (a first poll of a full mailbox), TurboFan only at OPTIMIZE_AT (a long run of mail); a few new messages
// now and then are left to the interpreter. Like the heap
// policy, POP2MQTT_HEAP_POLICY=off leaves V8's defaults, and a compiler flag the process was started with (execArgv,
// NODE_OPTIONS) wins.
// Maglev, V8's mid-tier optimizing compiler, is left alone: the Node builds pop2mqtt runs on (official Node 20, and 22.23.3,
// the binaries' base) are configured without it (process.config.variables.v8_enable_maglev 0), so --maglev, at start or
// set later, compiles nothing (test/unit/compiler-tiers.test.ts), and NODE_OPTIONS may not carry it. Measured on the base
// with the binary's bundle (memory-w4.ts --messages 300 --runs 2, as is / --no-maglev / --maglev, two rounds): idle
// `once` 58.8-59.3 / 59.0-59.3 / 59.0-59.4 MiB, W4 +11.7-12.6 / +11.6-11.9 / +11.4-13.1 MiB, W1 +2.4-2.8 / +2.6-3.0 /
// +2.3-2.9 MiB: no difference beyond noise (docs/bench.md, "Node 22 / Maglev").
import v8 from 'node:v8';
import { v8FlagsGiven, type V8FlagsInput } from './v8-flags-given.js';

export interface CompilerTierInput extends V8FlagsInput {
  arch?: string;
}

/** How much new mail turns a compiler on: a poll with `poll` new messages or more, or `total` since start. */
export interface TierUpThreshold {
  poll: number;
  total: number;
}

/**
 * Sparkplug, the baseline compiler: a poll with 20 new messages or more (a first poll of a full mailbox), or 500 since
 * start (a busy mailbox). Fewer are run by the interpreter, and the compiler's code is never pulled into memory: a
 * daemon that alerts a message now and then stays as small as an idle one.
 */
export const TIER_UP_AT: TierUpThreshold = { poll: 20, total: 500 };
/**
 * TurboFan, the optimizing compiler, only for a long run of work: 5,000 new messages, in one poll or since start.
 * Below that its compiles cost more than they save: on a first poll of 300 messages it added 4.5 MiB (header rules)
 * and 8–9 MiB (a body rule: MIME parsing and base64 are hot) to the peak RSS, part of it malloc arenas of V8's
 * background compile threads (scripts/bench/memory-w4.ts --messages 300, with and without --no-turbofan: W4 +28 ->
 * +20 MiB over idle), and a first poll of 1,000 messages took more CPU time with it than without (profile-w1
 * --compare, 5 runs each: CPU median 750 vs 550 ms, poll 488 vs 425 ms).
 */
export const OPTIMIZE_AT: TierUpThreshold = { poll: 5000, total: 5000 };

/** [flag while idle, V8's default restored for work, flag names that mean the user chose this compiler's setting, when]. */
const TIERS: ReadonlyArray<readonly [string, string, readonly string[], TierUpThreshold]> = [
  ['--no-turbofan', '--turbofan', ['turbofan', 'opt', 'max-opt'], OPTIMIZE_AT],
  ['--no-sparkplug', '--sparkplug', ['sparkplug'], TIER_UP_AT],
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
  return deferredTiers(o).map(([idle, work]) => [idle, work]);
}

type DeferredTier = readonly [idle: string, work: string, at: TierUpThreshold];

function deferredTiers(o: CompilerTierInput): DeferredTier[] {
  // On the measured V8 versions (v8FlagsGiven) both compilers are on by default.
  const args = v8FlagsGiven(o);
  if (!args) return [];
  const given = flagNames(args);
  if (ALL_TIERS.some((n) => given.has(n))) return [];
  const sparkplug = SPARKPLUG_ARCHES.includes(o.arch ?? process.arch);
  // Without Sparkplug (32-bit ARM) TurboFan is the only compiler: it keeps the baseline's threshold (not measured there).
  return TIERS.filter(([idle, , own]) => !own.some((n) => given.has(n)) && (idle !== '--no-sparkplug' || sparkplug)).map(
    ([idle, work, , at]) => [idle, work, sparkplug ? at : TIER_UP_AT] as const,
  );
}

let deferred: DeferredTier[] = [];

/** At start: hold back the optimizing compilers (see above); returns the flags set. */
export function deferOptimizingCompilers(o: CompilerTierInput = {}): string[] {
  deferred = deferredTiers(o);
  if (deferred.length) v8.setFlagsFromString(deferred.map(([idle]) => idle).join(' '));
  return deferred.map(([idle]) => idle);
}

/** Turns on the deferred compilers `which` selects (all by default): V8's own tiering from then on; returns the flags set. */
function enable(which: (t: DeferredTier) => boolean = () => true): string[] {
  const now = deferred.filter(which);
  if (!now.length) return [];
  deferred = deferred.filter((t) => !now.includes(t));
  const flags = now.map(([, work]) => work);
  v8.setFlagsFromString(flags.join(' '));
  return flags;
}

/** There is work (a whole message to explain): V8's own tiering from now on. Cheap and idempotent; returns the flags set, if any. */
export function enableOptimizingCompilers(): string[] {
  return enable();
}

let messagesSeen = 0;

/** A poll found `n` new messages: enables each compiler once its threshold is reached; returns the flags set, if any. */
export function newMessagesSeen(n: number): string[] {
  messagesSeen += n;
  return enable(([, , at]) => n >= at.poll || messagesSeen >= at.total);
}
