// Builds the pop2mqtt container images (linux/amd64, linux/arm64, linux/arm/v7) offline from the SEA binaries and the few Debian files they need; same inputs, same digest.
// Usage: node --import tsx scripts/image/build-image.ts [--targets x64,arm64,armv7l] [--out DIR]
// Output: <out>/pop2mqtt-<version>-linux-<arch>.oci.tar (OCI layout + docker manifest.json) and <out>/DIGESTS.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildImage, type ImageSpec, type Platform, type TarEntry } from './oci.js';
import { CONTAINER_GID, CONTAINER_UID, CONTAINER_USER, DATA_DIR } from '../../src/cli/commands/container.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Target = 'x64' | 'arm64' | 'armv7l';

interface TargetInfo {
  platform: Platform;
  /** Where this build host keeps the target's glibc/libstdc++ (native packages for x64, Debian cross packages for ARM). */
  libDir: string;
  /** The multiarch directory inside the image. */
  triplet: string;
  /** PT_INTERP of the binary. */
  interp: string;
  /** Debian packages the libraries come from (their versions go into a label). */
  packages: string[];
}

export const TARGET_INFO: Record<Target, TargetInfo> = {
  x64: {
    platform: { os: 'linux', architecture: 'amd64' },
    libDir: '/lib/x86_64-linux-gnu',
    triplet: 'x86_64-linux-gnu',
    interp: '/lib64/ld-linux-x86-64.so.2',
    packages: ['libc6', 'libstdc++6', 'libgcc-s1'],
  },
  arm64: {
    platform: { os: 'linux', architecture: 'arm64' },
    libDir: '/usr/aarch64-linux-gnu/lib',
    triplet: 'aarch64-linux-gnu',
    interp: '/lib/ld-linux-aarch64.so.1',
    packages: ['libc6-arm64-cross', 'libstdc++6-arm64-cross', 'libgcc-s1-arm64-cross'],
  },
  armv7l: {
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    libDir: '/usr/arm-linux-gnueabihf/lib',
    triplet: 'arm-linux-gnueabihf',
    interp: '/lib/ld-linux-armhf.so.3',
    packages: ['libc6-armhf-cross', 'libstdc++6-armhf-cross', 'libgcc-s1-armhf-cross', 'libatomic1-armhf-cross'],
  },
};

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
export const BINARY_IN_IMAGE = '/usr/bin/pop2mqtt';

function readelf(args: string[], file: string): string {
  return execFileSync('readelf', [...args, file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

/** DT_NEEDED of a file, then of those, resolved in libDir: the closure the dynamic loader will open. */
export function neededLibraries(binary: string, libDir: string): string[] {
  const found = new Set<string>();
  const queue = [binary];
  while (queue.length) {
    const f = queue.shift()!;
    for (const m of readelf(['-d'], f).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      const name = m[1]!;
      if (found.has(name)) continue;
      const p = path.join(libDir, name);
      if (!existsSync(p)) throw new Error(`${path.basename(binary)} needs ${name}, which is not in ${libDir}`);
      found.add(name);
      queue.push(p);
    }
  }
  return [...found].sort();
}

function interpreterOf(binary: string): string {
  const m = /Requesting program interpreter: ([^\]]+)\]/.exec(readelf(['-l'], binary));
  if (!m) throw new Error(`${binary}: no program interpreter (not a dynamic executable?)`);
  return m[1]!;
}

function packageVersions(pkgs: string[]): string {
  const out = execFileSync('dpkg-query', ['-W', '-f=${Package}=${Version}\\n', ...pkgs, 'ca-certificates'], { encoding: 'utf8' });
  return out.trim().split('\n').sort().join(' ');
}

function dirsFor(paths: string[]): TarEntry[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].map((d) => ({ type: 'dir', path: d, mode: 0o755 }));
}

export function imageSpec(target: Target, binary: string, version: string, mtime: number): ImageSpec {
  const info = TARGET_INFO[target];
  const interp = interpreterOf(binary);
  if (interp !== info.interp) throw new Error(`${binary}: interpreter ${interp}, expected ${info.interp} for ${target}`);
  const libs = neededLibraries(binary, info.libDir);
  const ldName = path.basename(info.interp);
  const libPath = `lib/${info.triplet}`;
  const file = (p: string, data: Buffer | string, mode = 0o644): TarEntry => ({ type: 'file', path: p, mode, data: Buffer.isBuffer(data) ? data : Buffer.from(data) });

  // Layer 1: the runtime: loader and libraries, CA bundle, users, name service config, /tmp and /data.
  const runtime: TarEntry[] = [
    ...[...new Set([...libs, ldName])].map((l) => file(`${libPath}/${l}`, readFileSync(realpathSync(path.join(info.libDir, l))), 0o755)),
    file('etc/ssl/certs/ca-certificates.crt', readFileSync(CA_BUNDLE)),
    file('etc/passwd', `root:x:0:0:root:/root:/sbin/nologin\n${CONTAINER_USER}:x:${CONTAINER_UID}:${CONTAINER_GID}:pop2mqtt:${DATA_DIR}:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`),
    file('etc/group', `root:x:0:\n${CONTAINER_USER}:x:${CONTAINER_GID}:\nnogroup:x:65534:\n`),
    file('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n'),
  ];
  const interpRel = info.interp.slice(1);
  if (interpRel !== `${libPath}/${ldName}`) {
    runtime.push({ type: 'symlink', path: interpRel, target: path.relative(path.dirname(info.interp), `/${libPath}/${ldName}`) });
  }
  const runtimeDirs = dirsFor(runtime.map((e) => e.path)).filter((d) => !runtime.some((e) => e.path === d.path));
  runtime.push(...runtimeDirs);
  runtime.push({ type: 'dir', path: 'tmp', mode: 0o1777 });
  runtime.push({ type: 'dir', path: DATA_DIR.slice(1), mode: 0o750, uid: CONTAINER_UID, gid: CONTAINER_GID });

  // Layer 2: the application, so a new release changes only this layer.
  const app: TarEntry[] = [
    { type: 'dir', path: 'usr', mode: 0o755 },
    { type: 'dir', path: 'usr/bin', mode: 0o755 },
    file(BINARY_IN_IMAGE.slice(1), readFileSync(binary), 0o755),
  ];

  return {
    platform: info.platform,
    layers: [runtime, app],
    mtime,
    ref: `pop2mqtt:${version}`,
    config: {
      Entrypoint: [BINARY_IN_IMAGE, 'container'],
      Cmd: ['run', '--config', `${DATA_DIR}/config.yaml`],
      Env: [
        'PATH=/usr/bin',
        // Node trusts its own Mozilla bundle; this adds Debian's (same roots, updated with each image build).
        `NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt`,
        'MALLOC_ARENA_MAX=1',
      ],
      WorkingDir: DATA_DIR,
      Volumes: { [DATA_DIR]: {} },
      Labels: {
        'org.opencontainers.image.title': 'pop2mqtt',
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.licenses': 'MIT',
        'org.opencontainers.image.description': 'Polls POP3 mailboxes with header previews and publishes matching mail as MQTT alerts',
        'io.pop2mqtt.debian-packages': packageVersions(info.packages),
      },
    },
  };
}

export function imageFileName(version: string, target: Target): string {
  const p = TARGET_INFO[target].platform;
  return `pop2mqtt-${version}-linux-${p.architecture}${p.variant ?? ''}.oci.tar`;
}

function main(): void {
  const { values } = parseArgs({ options: { targets: { type: 'string' }, out: { type: 'string' } } });
  const targets = (values.targets ?? process.env.POP2MQTT_BUILD_TARGETS ?? 'x64 arm64 armv7l').split(/[\s,]+/).filter(Boolean) as Target[];
  for (const t of targets) if (!(t in TARGET_INFO)) throw new Error(`unknown target ${t}`);
  const out = path.resolve(values.out ?? path.join(ROOT, 'dist', 'image'));
  mkdirSync(out, { recursive: true });
  const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  // Reproducible builds: every timestamp is SOURCE_DATE_EPOCH (default 0, the epoch), never the clock.
  const mtime = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  if (!Number.isInteger(mtime) || mtime < 0) throw new Error(`SOURCE_DATE_EPOCH must be a non-negative integer, got ${process.env.SOURCE_DATE_EPOCH}`);
  const lines: string[] = [];
  for (const t of targets) {
    const binary = path.join(ROOT, 'dist', `pop2mqtt-linux-${t}`);
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm run build:binaries`);
    const img = buildImage(imageSpec(t, binary, version, mtime));
    const name = imageFileName(version, t);
    writeFileSync(path.join(out, name), img.archive);
    const p = TARGET_INFO[t].platform;
    const line = `${img.manifest.digest}  ${name}  ${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}  ${(img.archive.length / 1048576).toFixed(1)} MiB`;
    lines.push(line);
    console.log(line);
  }
  writeFileSync(path.join(out, 'DIGESTS'), `${lines.map((l) => l.split('  ').slice(0, 2).join('  ')).join('\n')}\n`);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) main();
