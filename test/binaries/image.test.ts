// The container images for real: built twice to the same digest, read by skopeo, unpacked and run under unshare+chroot (podman cannot start containers in this sandbox) for real polls against Dovecot and Mosquitto, as a plain container and as the Home Assistant add-on with a fake Supervisor; the ARM images chrooted under a static qemu (arm64 polls, armv7 starts and checks).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { buildImage, untar, type BuiltImage } from '../../scripts/image/oci.js';
import { imageSpec, type Target as ImageTarget } from '../../scripts/image/build-image.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { TARGETS, binaryPath, openTempDir, runCommand } from '../support/binaries.js';

const USER = 'alice';
const PASS = 'image-poll-pw-5512';
const MQTT_USER = 'addons';
const MQTT_PASS = 'broker-pw-0917';
const TOKEN = 'f'.repeat(48);
const VERSION = '0.0.0-test';

function motionMail(n: number): string {
  return [
    'From: "Front camera" <cam1@nvr.example>',
    'To: alice@example.org',
    `Subject: Motion Detected: Front door (#${n})`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <image-${n}-${Date.now()}@nvr.example>`,
    '',
    'Motion was detected.',
    '',
  ].join('\r\n');
}

const RULES = ['- name: camera-motion', '  when:', '    subject: { regex: "^Motion Detected: (?<camera>[^(]+?) \\\\(" }', '  publish: { topic: "camera/{{camera}}" }', ''].join('\n');

/** The image's parts as podman would see them: config JSON and layer blobs, in order. */
function parts(img: BuiltImage): { config: { config: { Env: string[]; Entrypoint: string[]; Cmd: string[]; WorkingDir: string } }; layers: Buffer[] } {
  const files = new Map(untar(img.archive).filter((e) => e.type === 'file').map((e) => [e.path, e.data]));
  const index = JSON.parse(files.get('index.json')!.toString());
  const manifest = JSON.parse(files.get(`blobs/sha256/${index.manifests[0].digest.slice(7)}`)!.toString());
  return {
    config: JSON.parse(files.get(`blobs/sha256/${manifest.config.digest.slice(7)}`)!.toString()),
    layers: manifest.layers.map((l: { digest: string }) => files.get(`blobs/sha256/${l.digest.slice(7)}`)!),
  };
}

/** Unpack the layers with GNU tar (an independent reader), keeping numeric owners and modes. */
function unpack(img: BuiltImage, dir: string): void {
  mkdirSync(dir, { recursive: true });
  parts(img).layers.forEach((blob, i) => {
    const f = path.join(dir, `..layer${i}.tar.gz`);
    writeFileSync(f, blob);
    execFileSync('tar', ['-xzpf', f, '-C', dir, '--numeric-owner', '--same-owner']);
    rmSync(f);
  });
  // A container runtime provides the mount point for /proc itself; so does this stand-in.
  mkdirSync(path.join(dir, 'proc'));
}

/** env -i with exactly the image's Env plus extras, as a container runtime would start the entrypoint. */
function imageEnv(img: BuiltImage, extra: Record<string, string> = {}): string[] {
  return [...parts(img).config.config.Env, ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];
}

function chrootArgv(img: BuiltImage, rootfs: string, args: string[], extra: Record<string, string> = {}, emulator?: string): string[] {
  const { Entrypoint } = parts(img).config.config;
  // unshare: own mount and PID namespaces, /proc mounted inside the rootfs; the network stays the host's loopback.
  // env -i first: unshare and chroot pass the environment on, so the entrypoint sees exactly the image's Env.
  // An ARM image runs through a static qemu copied into the rootfs (no binfmt_misc here), so every path the
  // guest opens is the image's own.
  const run = emulator ? [`/.qemu/${path.basename(emulator)}`, ...Entrypoint] : Entrypoint;
  return ['/usr/bin/env', '-i', ...imageEnv(img, extra), '/usr/bin/unshare', '--mount', '--pid', '--fork', `--mount-proc=${path.join(rootfs, 'proc')}`, '/usr/sbin/chroot', rootfs, ...run, ...args];
}

/** A plain-container config in the rootfs's /data: the test Dovecot over STARTTLS (its CA beside it) and the test broker. */
function writePlainConfig(rootfs: string, dovecot: DovecotServer, brokerUrl: string): void {
  copyFileSync(dovecot.caFile, path.join(rootfs, 'data', 'ca.pem'));
  writeFileSync(
    path.join(rootfs, 'data', 'config.yaml'),
    [
      'state_dir: /data/state',
      'mqtt:',
      `  url: ${brokerUrl}`,
      `  username: ${MQTT_USER}`,
      '  password: ${MQTT_PASSWORD}',
      'mailboxes:',
      '  - id: nvr',
      `    host: ${dovecot.host}`,
      `    port: ${dovecot.port}`,
      '    tls: starttls',
      '    ca_file: /data/ca.pem',
      `    username: ${USER}`,
      '    password: ${MAIL_PASSWORD}',
      '    existing: process',
      'rules:',
      RULES,
    ].join('\n'),
    { mode: 0o644 },
  );
}

describe('container image', { timeout: 900_000 }, () => {
  const isRoot = process.getuid?.() === 0;
  let tmp = '';
  let amd64: BuiltImage | undefined;
  let dovecot: DovecotServer | undefined;
  let broker: MosquittoServer | undefined;
  let sub: Subscriber | undefined;
  let supervisor: Server | undefined;
  let supervisorUrl = '';
  const children: ChildProcess[] = [];

  before(async () => {
    tmp = openTempDir('p2m-image-');
    [dovecot, broker] = await Promise.all([
      startDovecot({ users: [{ user: USER, pass: PASS }] }),
      startMosquitto({ users: [{ user: MQTT_USER, pass: MQTT_PASS }] }),
    ]);
    sub = await subscribe(broker.url, ['pop2mqtt/#', 'homeassistant/#'], { username: MQTT_USER, password: MQTT_PASS });
    supervisor = createServer((req, res) => {
      if (req.url === '/services/mqtt' && req.headers.authorization === `Bearer ${TOKEN}`) {
        const port = Number(new URL(broker!.url).port);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ result: 'ok', data: { host: '127.0.0.1', port, ssl: false, protocol: '3.1.1', username: MQTT_USER, password: MQTT_PASS, addon: 'core_mosquitto' } }));
        return;
      }
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ result: 'error', message: 'Unauthorized' }));
    });
    await new Promise<void>((r) => supervisor!.listen(0, '127.0.0.1', r));
    const a = supervisor.address();
    supervisorUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await sub?.close();
    await new Promise((r) => supervisor?.close(r));
    await Promise.all([dovecot?.stop(), broker?.stop()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('amd64: two builds give the same digest; skopeo reads it as OCI archive and as docker archive', { skip: !TARGETS.includes('x64') && 'x64 not among the targets' }, async () => {
    const first = buildImage(imageSpec('x64', binaryPath('x64'), VERSION, 0));
    const second = buildImage(imageSpec('x64', binaryPath('x64'), VERSION, 0));
    assert.equal(second.manifest.digest, first.manifest.digest);
    assert.ok(first.archive.equals(second.archive), 'byte-identical archives');
    amd64 = first;
    const file = path.join(tmp, 'amd64.oci.tar');
    writeFileSync(file, first.archive);
    const oci = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${file}`], { encoding: 'utf8' }));
    assert.equal(oci.Digest, first.manifest.digest);
    assert.equal(oci.Architecture, 'amd64');
    assert.equal(oci.Layers.length, 2);
    const dockerCfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${file}`], { encoding: 'utf8' }));
    assert.deepEqual(dockerCfg.config.Entrypoint, ['/usr/bin/pop2mqtt', 'container']);
    assert.deepEqual(dockerCfg.config.Volumes, { '/data': {} });
  });

  test('amd64 as a plain container: a real poll, the alert on MQTT, state owned by the unprivileged user', { skip: (!TARGETS.includes('x64') && 'x64 not among the targets') || (!isRoot && 'chroot needs root') }, async () => {
    assert.ok(amd64, 'built by the previous test');
    const rootfs = path.join(tmp, 'rootfs-plain');
    unpack(amd64, rootfs);
    assert.equal(statSync(path.join(rootfs, 'data')).uid, 1000);
    writePlainConfig(rootfs, dovecot!, broker!.url);
    // A config the unprivileged user cannot read is named, with the fix, before anything runs.
    chmodSync(path.join(rootfs, 'data', 'config.yaml'), 0o600);
    const denied = await runCommand(chrootArgv(amd64, rootfs, ['check', '--config', '/data/config.yaml']), { timeoutMs: 180_000 });
    assert.equal(denied.code, 2, denied.stderr);
    assert.match(denied.stderr, /\/data\/config\.yaml is not readable by the user pop2mqtt \(uid 1000\).*chown 1000:1000/);
    chmodSync(path.join(rootfs, 'data', 'config.yaml'), 0o644);

    await dovecot!.deliver(USER, motionMail(1));
    const r = await runCommand(chrootArgv(amd64, rootfs, ['once', '--config', '/data/config.yaml'], { MQTT_PASSWORD: MQTT_PASS, MAIL_PASSWORD: PASS }), { timeoutMs: 180_000 });
    assert.equal(r.code, 0, `once in the image failed:\n${r.stdout}\n${r.stderr}`);
    const alert = await sub!.waitFor((m) => m.topic === 'pop2mqtt/camera/Front door', 30_000);
    assert.match(alert.text, /Motion Detected: Front door \(#1\)/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(`${PASS}|${MQTT_PASS}`), 'no secret printed');
    // Started as root, the entrypoint dropped to pop2mqtt (uid 1000): everything it wrote belongs to that user.
    const state = path.join(rootfs, 'data', 'state');
    assert.ok(readdirSync(state).length > 0, 'state written');
    for (const n of readdirSync(state)) assert.equal(statSync(path.join(state, n)).uid, 1000, `${n} owned by uid 1000`);
  });

  test('amd64 as the Home Assistant add-on: options.json + Supervisor MQTT service -> a running daemon, discovery and the alert', { skip: (!TARGETS.includes('x64') && 'x64 not among the targets') || (!isRoot && 'chroot needs root') }, async (t) => {
    assert.ok(amd64, 'built by the first test');
    const rootfs = path.join(tmp, 'rootfs-addon');
    unpack(amd64, rootfs);
    // What the Supervisor provides: /data/options.json (root-owned, as in Home Assistant) and the /ssl folder.
    mkdirSync(path.join(rootfs, 'ssl'));
    copyFileSync(dovecot!.caFile, path.join(rootfs, 'ssl', 'pop3-ca.pem'));
    writeFileSync(
      path.join(rootfs, 'data', 'options.json'),
      JSON.stringify({
        mailboxes: [{ id: 'garden', host: dovecot!.host, port: dovecot!.tlsPort, tls: 'implicit', ca_file: '/ssl/pop3-ca.pem', username: USER, password: PASS, schedule: '*/2 * * * * *', existing: 'process' }],
        rules: RULES,
        log_level: 'info',
        discovery: true,
      }),
    );
    execFileSync('chown', ['0:0', path.join(rootfs, 'data')]);
    await dovecot!.deliver(USER, motionMail(2));
    const { Cmd } = parts(amd64).config.config;
    const argv = chrootArgv(amd64, rootfs, Cmd, { SUPERVISOR_TOKEN: TOKEN, POP2MQTT_SUPERVISOR_URL: supervisorUrl });
    let output = '';
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<never>((_, reject) => child.on('exit', (code, sig) => reject(new Error(`the add-on exited (${code ?? sig}):\n${output}`))));
    exited.catch(() => undefined);
    try {
      const alert = await Promise.race([
        exited,
        sub!.waitFor((m) => m.topic === 'pop2mqtt/camera/Front door' && m.text.includes('(#2)'), 120_000).catch((e: Error) => {
          throw new Error(`${e.message}\n--- add-on output ---\n${output}`);
        }),
      ]);
      assert.match(alert.text, /"mailbox":"garden"/);
      const discovery = await sub!.waitFor((m) => m.topic.startsWith('homeassistant/') && m.topic.includes('garden'), 30_000);
      assert.ok(discovery.text.length > 0, 'discovery on by default');
      assert.doesNotMatch(output, new RegExp(`${PASS}|${MQTT_PASS}|${TOKEN}`), 'no secret in the add-on log');
      assert.equal(statSync(path.join(rootfs, 'data', 'pop2mqtt.yaml')).uid, 1000);
    } finally {
      // `unshare --fork` ignores SIGTERM itself (it waits for its child), so stop the daemon as `docker stop` would:
      // SIGTERM to the container's PID 1, which is the entrypoint (chroot exec'd it). unshare then exits with its status.
      const children = `/proc/${child.pid}/task/${child.pid}/children`;
      const inner = child.exitCode === null && existsSync(children) ? readFileSync(children, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
      for (const pid of inner) process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 60_000;
      while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(child.exitCode, 0, `the add-on did not stop cleanly on SIGTERM:\n${output}`);
    assert.match(output, /pop2mqtt stopped/, 'a clean shutdown is logged');
    // The add-on's log, from options to alert to stop, in the test report.
    for (const line of output.trim().split('\n')) t.diagnostic(line);
  });

  for (const target of ['arm64', 'armv7l'] as const satisfies readonly ImageTarget[]) {
    // arm64: as far as a real poll; armv7l (slower still under qemu): start and config check.
    const poll = target === 'arm64';
    test(`${target} under qemu, chrooted into the image: ${poll ? 'a real poll' : '--version and check'}`, { skip: (!TARGETS.includes(target) && `${target} not among the targets`) || (!isRoot && 'chroot needs root') }, async () => {
      const img = buildImage(imageSpec(target, binaryPath(target), VERSION, 0));
      const rootfs = path.join(tmp, `rootfs-${target}`);
      unpack(img, rootfs);
      const qemu = execFileSync('sh', ['-c', `command -v ${target === 'arm64' ? 'qemu-aarch64-static' : 'qemu-arm-static'}`], { encoding: 'utf8' }).trim();
      mkdirSync(path.join(rootfs, '.qemu'));
      copyFileSync(qemu, path.join(rootfs, '.qemu', path.basename(qemu)));
      chmodSync(path.join(rootfs, '.qemu', path.basename(qemu)), 0o755);
      writePlainConfig(rootfs, dovecot!, broker!.url);
      const env = { MQTT_PASSWORD: MQTT_PASS, MAIL_PASSWORD: PASS };
      const run = (args: string[]) => runCommand(chrootArgv(img, rootfs, args, env, qemu), { timeoutMs: 600_000 });
      const v = await run(['--version']);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /^pop2mqtt /);
      const c = await run(['check', '--config', '/data/config.yaml']);
      assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
      if (!poll) return;
      await dovecot!.deliver(USER, motionMail(3));
      const r = await run(['once', '--config', '/data/config.yaml']);
      assert.equal(r.code, 0, `once in the ${target} image failed:\n${r.stdout}\n${r.stderr}`);
      const alert = await sub!.waitFor((m) => m.topic === 'pop2mqtt/camera/Front door' && m.text.includes('(#3)'), 60_000);
      assert.match(alert.text, /"mailbox":"nvr"/);
      for (const n of readdirSync(path.join(rootfs, 'data', 'state'))) assert.equal(statSync(path.join(rootfs, 'data', 'state', n)).uid, 1000, `${n} owned by uid 1000`);
    });
  }
});
