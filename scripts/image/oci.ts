// A small, reproducible writer of OCI image tarballs (no daemon, no registry): ustar layers with fixed owners, modes, mtimes and order, gzip with a fixed header, sha256 digests, and an archive both `podman load` (OCI layout) and `docker load` (manifest.json) accept.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** One entry of a layer. Paths are relative to the image root, without a leading slash. */
export type TarEntry =
  | { type: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { type: 'file'; path: string; mode: number; data: Buffer; uid?: number; gid?: number }
  | { type: 'symlink'; path: string; target: string };

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`tar: value ${value} does not fit in ${width - 1} octal digits`);
  return s.padStart(width - 1, '0') + '\0';
}

/** Split a path into ustar's name (<= 100 bytes) and prefix (<= 155 bytes) fields. */
function splitName(p: string): { name: string; prefix: string } {
  if (Buffer.byteLength(p) <= 100) return { name: p, prefix: '' };
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { name, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${p}`);
}

function header(e: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const p = e.type === 'dir' ? `${e.path.replace(/\/+$/, '')}/` : e.path;
  const { name, prefix } = splitName(p);
  h.write(name, 0, 100, 'utf8');
  const mode = e.type === 'symlink' ? 0o777 : e.mode;
  h.write(octal(mode, 8), 100, 8, 'ascii');
  h.write(octal(e.type === 'symlink' ? 0 : e.uid ?? 0, 8), 108, 8, 'ascii');
  h.write(octal(e.type === 'symlink' ? 0 : e.gid ?? 0, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(mtime, 12), 136, 12, 'ascii');
  h.fill(' ', 148, 156); // checksum field counts as spaces while summing
  h.write(e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0', 156, 1, 'ascii');
  if (e.type === 'symlink') {
    if (Buffer.byteLength(e.target) > 100) throw new Error(`tar: symlink target too long: ${e.target}`);
    h.write(e.target, 157, 100, 'utf8');
  }
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  // uname/gname left empty: numeric ids only, so the host's user database never leaks in.
  h.write(octal(0, 8), 329, 8, 'ascii');
  h.write(octal(0, 8), 337, 8, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/**
 * A ustar archive of the entries, sorted by path (parents before children), every mtime = `mtime`.
 * Parent directories must be listed explicitly; a missing one is an error rather than a guess.
 */
export function tar(entries: TarEntry[], mtime: number): Buffer {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.path.startsWith('/') || e.path.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new Error(`tar: bad path ${JSON.stringify(e.path)}`);
    }
    if (seen.has(e.path)) throw new Error(`tar: duplicate path ${e.path}`);
    seen.add(e.path);
  }
  for (const e of entries) {
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
    if (parent && !entries.some((d) => d.type === 'dir' && d.path === parent)) throw new Error(`tar: ${e.path} has no parent directory entry`);
  }
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  for (const e of sorted) {
    const data = e.type === 'file' ? e.data : Buffer.alloc(0);
    parts.push(header(e, data.length, mtime));
    if (data.length) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** gzip with a fixed header: zlib writes mtime 0 and no file name; the OS byte is pinned to 255 (unknown). */
export function gzipFixed(data: Buffer): Buffer {
  const gz = gzipSync(data, { level: 6 });
  gz[9] = 255;
  return gz;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  os: 'linux';
  architecture: 'amd64' | 'arm64' | 'arm';
  variant?: 'v7' | 'v8';
}

export interface ImageSpec {
  platform: Platform;
  /** Layers bottom-up. */
  layers: TarEntry[][];
  mtime: number;
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Volumes?: Record<string, object>;
    Labels?: Record<string, string>;
  };
  /** Reference name (for index.json's org.opencontainers.image.ref.name and docker's RepoTags), e.g. pop2mqtt:0.1.0 */
  ref: string;
}

export interface Blob {
  digest: string; // sha256:<hex>
  data: Buffer;
}

export interface BuiltImage {
  blobs: Blob[];
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** The single archive: OCI layout + docker manifest.json. */
  archive: Buffer;
}

/** Canonical JSON: keys sorted at every level, no whitespace, so equal content gives equal digests. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function blobOf(data: Buffer): Blob {
  return { digest: `sha256:${sha256(data)}`, data };
}

export function buildImage(spec: ImageSpec): BuiltImage {
  const layerBlobs: Blob[] = [];
  const diffIds: string[] = [];
  for (const entries of spec.layers) {
    const raw = tar(entries, spec.mtime);
    diffIds.push(`sha256:${sha256(raw)}`);
    layerBlobs.push(blobOf(gzipFixed(raw)));
  }
  const created = new Date(spec.mtime * 1000).toISOString().replace(/\.000Z$/, 'Z');
  const configJson = {
    architecture: spec.platform.architecture,
    ...(spec.platform.variant ? { variant: spec.platform.variant } : {}),
    os: spec.platform.os,
    created,
    config: spec.config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layerBlobs.map(() => ({ created, created_by: 'scripts/image/build-image.ts' })),
  };
  const configBlob = blobOf(Buffer.from(canonicalJson(configJson)));
  const layers: Descriptor[] = layerBlobs.map((b) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: b.digest,
    size: b.data.length,
  }));
  const config: Descriptor = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configBlob.digest, size: configBlob.data.length };
  const manifestJson = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers };
  const manifestBlob = blobOf(Buffer.from(canonicalJson(manifestJson)));
  const manifest: Descriptor = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: manifestBlob.digest,
    size: manifestBlob.data.length,
    platform: spec.platform,
    annotations: { 'org.opencontainers.image.ref.name': spec.ref.includes(':') ? spec.ref.slice(spec.ref.lastIndexOf(':') + 1) : spec.ref, 'io.containerd.image.name': spec.ref },
  };
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [manifest] };
  const blobs = [...layerBlobs, configBlob, manifestBlob];
  const hex = (d: string) => d.slice('sha256:'.length);
  // docker load reads manifest.json (the format `docker save` writes since Docker 25, next to the OCI layout).
  const dockerManifest = [
    { Config: `blobs/sha256/${hex(configBlob.digest)}`, RepoTags: [spec.ref], Layers: layerBlobs.map((b) => `blobs/sha256/${hex(b.digest)}`) },
  ];
  const dir = (p: string): TarEntry => ({ type: 'dir', path: p, mode: 0o755 });
  const file = (p: string, data: Buffer | string): TarEntry => ({ type: 'file', path: p, mode: 0o644, data: Buffer.isBuffer(data) ? data : Buffer.from(data) });
  const archiveEntries: TarEntry[] = [
    dir('blobs'),
    dir('blobs/sha256'),
    ...blobs.map((b) => file(`blobs/sha256/${hex(b.digest)}`, b.data)),
    file('oci-layout', canonicalJson({ imageLayoutVersion: '1.0.0' })),
    file('index.json', canonicalJson(index)),
    file('manifest.json', canonicalJson(dockerManifest)),
  ];
  return { blobs, manifest, config, layers, archive: tar(archiveEntries, spec.mtime) };
}

/** Minimal ustar reader (for tests and for unpacking a layer into a rootfs): regular files, dirs and symlinks. */
export function untar(buf: Buffer): Array<{ path: string; type: 'file' | 'dir' | 'symlink'; mode: number; uid: number; gid: number; mtime: number; data: Buffer; target: string }> {
  const out = [];
  let off = 0;
  const str = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');
  const num = (b: Buffer) => parseInt(str(b).trim() || '0', 8);
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== num(h.subarray(148, 156))) throw new Error(`untar: bad header checksum at offset ${off}`);
    const name = str(h.subarray(0, 100));
    const prefix = str(h.subarray(345, 500));
    const flag = String.fromCharCode(h[156]!);
    const size = num(h.subarray(124, 136));
    const full = (prefix ? `${prefix}/${name}` : name).replace(/\/$/, '');
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    if (data.length !== size) throw new Error(`untar: truncated entry ${full}`);
    const type = flag === '5' ? 'dir' : flag === '2' ? 'symlink' : flag === '0' || flag === '\0' ? 'file' : null;
    if (!type) throw new Error(`untar: unsupported entry type ${JSON.stringify(flag)} for ${full}`);
    out.push({ path: full, type, mode: num(h.subarray(100, 108)), uid: num(h.subarray(108, 116)), gid: num(h.subarray(116, 124)), mtime: num(h.subarray(136, 148)), data, target: str(h.subarray(157, 257)) } as const);
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
