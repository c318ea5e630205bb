// The OCI image writer: ustar layers GNU tar reads back exactly, the same input giving the same bytes, and an archive whose index, manifest, config and layer digests all agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildImage, canonicalJson, gzipFixed, sha256, tar, untar, type TarEntry } from '../../scripts/image/oci.js';

const long = `usr/lib/${'x'.repeat(90)}/${'y'.repeat(60)}.so`;
const ENTRIES: TarEntry[] = [
  { type: 'file', path: 'etc/passwd', mode: 0o644, data: Buffer.from('root:x:0:0::/:/sbin/nologin\n') },
  { type: 'dir', path: 'etc', mode: 0o755 },
  { type: 'dir', path: 'data', mode: 0o750, uid: 1000, gid: 1000 },
  { type: 'dir', path: 'usr', mode: 0o755 },
  { type: 'dir', path: 'usr/lib', mode: 0o755 },
  { type: 'dir', path: long.slice(0, long.lastIndexOf('/')), mode: 0o755 },
  { type: 'file', path: long, mode: 0o755, data: Buffer.alloc(1000, 7) },
  { type: 'dir', path: 'lib64', mode: 0o755 },
  { type: 'symlink', path: 'lib64/ld.so', target: '../usr/lib/ld.so' },
];

test('tar: GNU tar lists every entry with its owner, mode, mtime and link, in path order', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'p2m-tar-'));
  try {
    const file = path.join(dir, 'a.tar');
    writeFileSync(file, tar(ENTRIES, 1_700_000_000));
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '--utc', '-tvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } })
      .trim()
      .split('\n');
    const names = listing.map((l) => l.split(/\s+/).slice(5).join(' '));
    assert.deepEqual(names, [
      'data/',
      'etc/',
      'etc/passwd',
      'lib64/',
      'lib64/ld.so -> ../usr/lib/ld.so',
      'usr/',
      'usr/lib/',
      `${long.slice(0, long.lastIndexOf('/'))}/`,
      long,
    ]);
    assert.match(listing[0]!, /^drwxr-x--- 1000\/1000 +0 2023-11-14 22:13:20 data\/$/);
    assert.match(listing[2]!, /^-rw-r--r-- 0\/0 +28 2023-11-14 22:13:20 etc\/passwd$/);
    assert.match(listing[8]!, /^-rwxr-xr-x 0\/0 +1000 /);
    const back = untar(tar(ENTRIES, 5));
    assert.deepEqual(back.find((e) => e.path === long)!.data, Buffer.alloc(1000, 7));
    assert.equal(back.find((e) => e.path === 'lib64/ld.so')!.target, '../usr/lib/ld.so');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tar: refuses what it cannot write faithfully', () => {
  assert.throws(() => tar([{ type: 'file', path: '/etc/x', mode: 0o644, data: Buffer.alloc(0) }], 0), /bad path/);
  assert.throws(() => tar([{ type: 'file', path: 'a/../b', mode: 0o644, data: Buffer.alloc(0) }], 0), /bad path/);
  assert.throws(() => tar([{ type: 'file', path: 'nodir/x', mode: 0o644, data: Buffer.alloc(0) }], 0), /no parent directory entry/);
  assert.throws(() => tar([{ type: 'dir', path: 'a', mode: 0o755 }, { type: 'dir', path: 'a', mode: 0o700 }], 0), /duplicate path a/);
  assert.throws(() => tar([{ type: 'file', path: 'z'.repeat(120), mode: 0o644, data: Buffer.alloc(0) }], 0), /too long/);
});

test('gzip has a fixed header and round-trips', () => {
  const data = Buffer.from('hello '.repeat(1000));
  const a = gzipFixed(data);
  assert.deepEqual(a, gzipFixed(data));
  assert.deepEqual([...a.subarray(4, 8)], [0, 0, 0, 0], 'mtime 0');
  assert.equal(a[9], 255, 'OS unknown');
  assert.deepEqual(gunzipSync(a), data);
});

test('image: same spec, same bytes; digests agree from index.json down to each layer', () => {
  const spec = {
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' } as const,
    layers: [ENTRIES, [{ type: 'dir', path: 'bin', mode: 0o755 }, { type: 'file', path: 'bin/app', mode: 0o755, data: Buffer.from('#!app') }] as TarEntry[]],
    mtime: 0,
    ref: 'pop2mqtt:1.2.3',
    config: { Entrypoint: ['/bin/app'], User: '', Env: ['PATH=/bin'], Volumes: { '/data': {} } },
  };
  const a = buildImage(spec);
  const b = buildImage(structuredClone({ ...spec, layers: spec.layers.map((l) => [...l].reverse()) }));
  assert.deepEqual(a.archive, b.archive, 'entry order in the input does not matter');
  assert.equal(a.manifest.digest, b.manifest.digest);

  const files = new Map(untar(a.archive).filter((e) => e.type === 'file').map((e) => [e.path, e.data]));
  assert.deepEqual(JSON.parse(files.get('oci-layout')!.toString()), { imageLayoutVersion: '1.0.0' });
  for (const [p, data] of files) if (p.startsWith('blobs/sha256/')) assert.equal(sha256(data), p.slice('blobs/sha256/'.length), `${p} is named by its digest`);
  const index = JSON.parse(files.get('index.json')!.toString());
  assert.equal(index.manifests.length, 1);
  assert.deepEqual(index.manifests[0].platform, { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], '1.2.3');
  const manifestBlob = files.get(`blobs/sha256/${index.manifests[0].digest.slice(7)}`)!;
  assert.equal(manifestBlob.length, index.manifests[0].size);
  const manifest = JSON.parse(manifestBlob.toString());
  assert.equal(canonicalJson(manifest), manifestBlob.toString(), 'canonical JSON');
  const config = JSON.parse(files.get(`blobs/sha256/${manifest.config.digest.slice(7)}`)!.toString());
  assert.equal(config.architecture, 'arm');
  assert.equal(config.variant, 'v7');
  assert.equal(config.created, '1970-01-01T00:00:00Z');
  assert.deepEqual(config.config.Entrypoint, ['/bin/app']);
  assert.equal(manifest.layers.length, 2);
  manifest.layers.forEach((l: { digest: string; size: number; mediaType: string }, i: number) => {
    assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const blob = files.get(`blobs/sha256/${l.digest.slice(7)}`)!;
    assert.equal(blob.length, l.size);
    assert.equal(`sha256:${sha256(gunzipSync(blob))}`, config.rootfs.diff_ids[i], 'diff_id is the digest of the uncompressed layer');
  });
  const docker = JSON.parse(files.get('manifest.json')!.toString());
  assert.deepEqual(docker, [{ Config: `blobs/sha256/${manifest.config.digest.slice(7)}`, Layers: manifest.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`), RepoTags: ['pop2mqtt:1.2.3'] }]);

  const c = buildImage({ ...spec, mtime: 1 });
  assert.notEqual(c.manifest.digest, a.manifest.digest, 'SOURCE_DATE_EPOCH is an input');
});
