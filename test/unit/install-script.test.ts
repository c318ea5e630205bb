// Checks scripts/install.sh staged into a temp root (--prefix) and the systemd unit it installs (systemd-analyze verify).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'install.sh');
const UNIT = path.join(ROOT, 'config', 'pop2mqtt.service');
const T = { timeout: 60_000 };

interface Fixture {
  dir: string;
  root: string;
  binary: string;
  example: string;
}

function fixture(opts: { example?: string; binaryVersion?: string; binaryExit?: number } = {}): Fixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'p2m-install-'));
  const binary = path.join(dir, 'pop2mqtt-fake');
  writeFileSync(binary, `#!/bin/sh\necho "${opts.binaryVersion ?? '1.2.3'}"\nexit ${opts.binaryExit ?? 0}\n`);
  chmodSync(binary, 0o755);
  const example = path.join(dir, 'example.yaml');
  writeFileSync(example, opts.example ?? '# example\nversion: 1\nstate_dir: ./data\nmqtt:\n  url: mqtt://broker:1883\n');
  return { dir, root: path.join(dir, 'root'), binary, example };
}

function run(f: Fixture, ...args: string[]): SpawnSyncReturns<string> {
  return spawnSync('bash', [SCRIPT, '--prefix', f.root, '--binary', f.binary, '--config-example', f.example, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function ok(r: SpawnSyncReturns<string>): void {
  assert.equal(r.status, 0, `install.sh failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

const mode = (p: string) => statSync(p).mode & 0o7777;
const paths = (f: Fixture) => ({
  bin: path.join(f.root, 'usr/local/bin/pop2mqtt'),
  confDir: path.join(f.root, 'etc/pop2mqtt'),
  conf: path.join(f.root, 'etc/pop2mqtt/config.yaml'),
  state: path.join(f.root, 'var/lib/pop2mqtt'),
  unit: path.join(f.root, 'etc/systemd/system/pop2mqtt.service'),
});

test('install lands binary, config, state dir and unit with the right modes', T, () => {
  const f = fixture();
  try {
    const r = run(f);
    ok(r);
    const p = paths(f);
    assert.equal(mode(p.bin), 0o755);
    assert.equal(readFileSync(p.bin, 'utf8'), readFileSync(f.binary, 'utf8'));
    assert.equal(mode(p.confDir), 0o755);
    assert.equal(mode(p.conf), 0o640);
    assert.equal(mode(p.state), 0o700);
    assert.equal(mode(p.unit), 0o644);
    assert.equal(readFileSync(p.unit, 'utf8'), readFileSync(UNIT, 'utf8'));
    const conf = readFileSync(p.conf, 'utf8');
    assert.match(conf, /^state_dir: \/var\/lib\/pop2mqtt$/m, 'state_dir must point at the unit StateDirectory');
    assert.doesNotMatch(conf, /\.\/data/);
    assert.match(conf, /url: mqtt:\/\/broker:1883/);
    // Under --prefix nothing touches the host's systemd: it only says what it would run.
    assert.match(r.stdout, /would run: systemctl daemon-reload/);
    assert.match(r.stdout, /would run: systemctl enable pop2mqtt\.service/);
    assert.match(r.stdout, /1\.2\.3/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('an example without state_dir gets one added', T, () => {
  const f = fixture({ example: 'mqtt:\n  url: mqtt://b\n' });
  try {
    ok(run(f));
    const conf = readFileSync(paths(f).conf, 'utf8');
    assert.equal(conf, 'state_dir: /var/lib/pop2mqtt\nmqtt:\n  url: mqtt://b\n');
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('second run is idempotent: keeps an edited config, replaces the binary', T, () => {
  const f = fixture();
  try {
    ok(run(f));
    const p = paths(f);
    writeFileSync(p.conf, 'edited: true\n');
    writeFileSync(path.join(p.state, 'box.state.json'), '{}');
    writeFileSync(f.binary, '#!/bin/sh\necho 2.0.0\n');
    const r = run(f);
    ok(r);
    assert.match(r.stdout, /kept existing/);
    assert.equal(readFileSync(p.conf, 'utf8'), 'edited: true\n');
    assert.equal(mode(p.conf), 0o640);
    assert.equal(readFileSync(path.join(p.state, 'box.state.json'), 'utf8'), '{}');
    assert.match(readFileSync(p.bin, 'utf8'), /2\.0\.0/);
    assert.equal(mode(p.bin), 0o755);
    assert.equal(mode(p.state), 0o700);
    // No temp files left behind by the atomic copies.
    const left = spawnSync('find', [f.root, '-name', '.*.new.*'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    assert.equal(left, '');
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('--uninstall removes binary and unit but keeps config and state; --purge removes them', T, () => {
  const f = fixture();
  try {
    ok(run(f));
    const p = paths(f);
    writeFileSync(path.join(p.state, 'box.state.json'), '{"uids":[]}');
    const u = run(f, '--uninstall');
    ok(u);
    assert.equal(existsSync(p.bin), false);
    assert.equal(existsSync(p.unit), false);
    assert.equal(existsSync(p.conf), true);
    assert.equal(readFileSync(path.join(p.state, 'box.state.json'), 'utf8'), '{"uids":[]}');
    assert.match(u.stdout, /would run: systemctl disable --now pop2mqtt\.service/);
    ok(run(f, '--uninstall')); // again: nothing left to remove, still fine
    ok(run(f, '--uninstall', '--purge'));
    assert.equal(existsSync(p.confDir), false);
    assert.equal(existsSync(p.state), false);
    assert.equal(existsSync(path.join(f.root, 'usr/local/bin')), true, 'purge removes only pop2mqtt paths');
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('release layout: binary, unit and example found next to the script without flags', T, () => {
  const f = fixture();
  try {
    const rel = path.join(f.dir, 'release');
    cpSync(SCRIPT, path.join(rel, 'install.sh'));
    cpSync(UNIT, path.join(rel, 'pop2mqtt.service'));
    cpSync(f.example, path.join(rel, 'example.yaml'));
    for (const t of ['x64', 'arm64', 'armv7l']) {
      writeFileSync(path.join(rel, `pop2mqtt-linux-${t}`), `#!/bin/sh\necho "pop2mqtt ${t}"\n`, { mode: 0o755 });
    }
    const dpkg = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8', timeout: 5_000 }).stdout?.trim();
    const expected = ({ amd64: 'x64', arm64: 'arm64', armhf: 'armv7l' } as Record<string, string>)[dpkg ?? ''] ??
      ({ x64: 'x64', arm64: 'arm64', arm: 'armv7l' } as Record<string, string>)[process.arch];
    const r = spawnSync('bash', [path.join(rel, 'install.sh'), '--prefix', f.root], { encoding: 'utf8', timeout: 30_000 });
    ok(r);
    const p = paths(f);
    assert.match(readFileSync(p.bin, 'utf8'), new RegExp(`"pop2mqtt ${expected}"`));
    assert.equal(readFileSync(p.unit, 'utf8'), readFileSync(UNIT, 'utf8'));
    assert.match(readFileSync(p.conf, 'utf8'), /url: mqtt:\/\/broker:1883/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('refuses a binary that does not run, and installs nothing', T, () => {
  const f = fixture({ binaryExit: 126 });
  try {
    const r = run(f);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /does not run on this machine/);
    assert.equal(existsSync(paths(f).bin), false);
    assert.equal(existsSync(paths(f).confDir), false);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('rejects unknown arguments and a missing binary', T, () => {
  const f = fixture();
  try {
    const bad = run(f, '--bogus');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /unknown argument: --bogus/);
    const missing = spawnSync('bash', [SCRIPT, '--prefix', f.root, '--binary', path.join(f.dir, 'nope')], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /does not exist/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('unit keeps the required hardening and never MemoryDenyWriteExecute', T, () => {
  const unit = readFileSync(UNIT, 'utf8');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => directives.get(k)?.at(-1);
  assert.equal(one('ExecStart'), '/usr/local/bin/pop2mqtt run --config /etc/pop2mqtt/config.yaml');
  assert.equal(one('StateDirectory'), 'pop2mqtt');
  assert.equal(one('ConfigurationDirectory'), 'pop2mqtt');
  assert.equal(one('Restart'), 'on-failure');
  for (const [k, v] of [
    ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'],
    ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'], ['CapabilityBoundingSet', ''], ['ProtectKernelTunables', 'yes'],
    ['ProtectControlGroups', 'yes'], ['RestrictNamespaces', 'yes'], ['LockPersonality', 'yes'], ['MemoryMax', '192M'],
  ] as const) {
    assert.equal(one(k), v, `${k}`);
  }
  assert.ok(directives.get('SystemCallFilter')?.includes('@system-service'));
  assert.equal(directives.has('MemoryDenyWriteExecute'), false, 'V8 JIT needs W+X memory');
});

test('systemd-analyze verify accepts the installed unit and security exposure stays low', T, () => {
  const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8', timeout: 5_000 });
  assert.equal(which.status, 0, 'systemd-analyze is required for this test: apt-get install systemd');
  const f = fixture();
  try {
    ok(run(f));
    // Offline verify resolves default dependencies (sysinit.target ...) inside --root, so give it the host's unit files.
    cpSync('/usr/lib/systemd/system', path.join(f.root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    const unit = paths(f).unit;
    const v = spawnSync('systemd-analyze', ['verify', `--root=${f.root}`, unit], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(v.status, 0, v.stderr);
    // verify only warns (exit 0) on unknown keys or bad values, so any output is a failure.
    assert.equal((v.stdout + v.stderr).trim(), '');
    const s = spawnSync('systemd-analyze', ['security', '--offline=yes', `--root=${f.root}`, '--threshold=20', '--no-pager', unit], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(s.status, 0, `exposure above 2.0:\n${s.stdout}${s.stderr}`);
    assert.match(s.stdout + s.stderr, /Overall exposure level for pop2mqtt\.service: 1\.\d/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
