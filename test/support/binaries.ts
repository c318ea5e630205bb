// Helpers for the single-binary tests (test/binaries/) and scripts/binaries/footprint.ts: which targets to test, how to run each (natively or under qemu), clean env, read-only dirs.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export type Target = 'x64' | 'arm64' | 'armv7l';
const KNOWN: readonly Target[] = ['x64', 'arm64', 'armv7l'];

/** Targets under test: POP2MQTT_BINARY_TARGETS (comma or space separated), default all three. */
export const TARGETS: Target[] = (process.env.POP2MQTT_BINARY_TARGETS ?? KNOWN.join(' '))
  .split(/[\s,]+/)
  .filter(Boolean)
  .map((t) => {
    if (!(KNOWN as readonly string[]).includes(t)) throw new Error(`unknown target ${t}`);
    return t as Target;
  });

export function binaryPath(target: Target): string {
  return path.join(ROOT, 'dist', `pop2mqtt-linux-${target}`);
}

/** Command prefix that runs a binary of this target on this host (mirrors target_runner in scripts/binaries/targets.sh). */
export function runnerFor(target: Target): string[] {
  const host = arch();
  if (target === 'x64') {
    if (host !== 'x64') throw new Error(`cannot run x64 binaries on ${host}`);
    return [];
  }
  if (target === 'arm64') return host === 'arm64' ? [] : ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];
  return host === 'arm' ? [] : ['qemu-arm-static', '-L', '/usr/arm-linux-gnueabihf'];
}

/** Emulated targets start in about a second and run far slower; every wait scales with this. */
export function slowFactor(target: Target): number {
  return runnerFor(target).length ? 8 : 1;
}

/** The environment a binary sees: nothing that would change Node's behaviour (NODE_OPTIONS, test-runner context). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of Object.keys(env)) if (k.startsWith('NODE_') || k === 'TSX_TSCONFIG_PATH') delete env[k];
  return env;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Run as this uid/gid (via setpriv) when we are root, so file permissions really apply. */
  uid?: number;
  /** Use this file instead of dist/pop2mqtt-linux-<target>. */
  binary?: string;
}

export function runCommand(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  let full = argv;
  if (opts.uid !== undefined && process.getuid?.() === 0) {
    full = ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', ...argv];
  }
  return new Promise((resolve) => {
    execFile(
      full[0]!,
      full.slice(1),
      { cwd: opts.cwd ?? tmpdir(), env: cleanEnv(opts.env), timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr),
          ms: Date.now() - started,
        });
      },
    );
  });
}

/** Run the single binary of a target with args. */
export function runBinary(target: Target, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const bin = opts.binary ?? binaryPath(target);
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/build-binaries.sh (scripts/test-binaries.sh does)`);
  return runCommand([...runnerFor(target), bin, ...args], { timeoutMs: 60_000 * slowFactor(target), ...opts });
}

/** Run the reference: `node bin/pop2mqtt.js` (the esbuild bundle in dist/pop2mqtt.cjs) with the same args. */
export function runReference(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runCommand([process.execPath, path.join(ROOT, 'bin', 'pop2mqtt.js'), ...args], { timeoutMs: 60_000, ...opts });
}

/** A world-readable temp dir (mkdtemp gives 0700, which a dropped-privilege run could not enter). */
export function openTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Put the binary into a fresh directory made read-only (0555), as on a device where /usr/local/bin is not writable. */
export function readOnlyBinaryDir(target: Target, parent: string): { dir: string; binary: string } {
  const dir = path.join(parent, `ro-${target}`);
  mkdirSync(dir);
  const binary = path.join(dir, 'pop2mqtt');
  try {
    linkSync(binaryPath(target), binary);
  } catch {
    copyFileSync(binaryPath(target), binary);
  }
  chmodSync(binary, 0o555);
  chmodSync(dir, 0o555);
  return { dir, binary };
}

/**
 * The layout of a device install: the binary in a read-only directory, a config directory, and a state directory
 * that only the unprivileged user (nobody) can write.
 */
export function deviceLayout(target: Target, parent: string): { dir: string; binary: string; confDir: string; stateDir: string } {
  const { dir, binary } = readOnlyBinaryDir(target, parent);
  const confDir = path.join(parent, 'conf');
  const stateDir = path.join(parent, 'state');
  mkdirSync(confDir, { mode: 0o755 });
  mkdirSync(stateDir, { mode: 0o700 });
  chownSync(stateDir, NOBODY, NOBODY);
  return { dir, binary, confDir, stateDir };
}

/** Names, sizes and mtimes of every entry below dir, to prove that nothing was written there. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = statSync(p);
      out.push(`${path.relative(dir, p)} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Environment values for every ${VAR} (or ${VAR:-default}) the YAML text references, so `check` can resolve them. */
export function envFor(yamlText: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of yamlText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}/g)) env[m[1]!] = `test-value-${m[1]!.toLowerCase()}`;
  return env;
}

/** uid of nobody, the unprivileged user the read-only tests run as. */
export const NOBODY = 65534;
