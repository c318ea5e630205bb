// Smoke tests of each single binary: same answers as `node bin/pop2mqtt.js` for --version, schema and check, and no writes beside itself.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  NOBODY, ROOT, TARGETS, envFor, openTempDir, deviceLayout, runBinary, runReference, slowFactor, snapshot, type RunResult,
} from '../support/binaries.js';

const EXAMPLE = path.join(ROOT, 'config', 'example.yaml');
const exampleText = readFileSync(EXAMPLE, 'utf8');
const exampleEnv = envFor(exampleText);

function same(actual: RunResult, expected: RunResult, what: string): void {
  assert.equal(actual.signal, null, `${what}: killed by ${actual.signal}\n${actual.stderr}`);
  assert.equal(actual.code, expected.code, `${what}: exit code\nbinary stderr: ${actual.stderr}\nnode stderr: ${expected.stderr}`);
  assert.equal(actual.stdout, expected.stdout, `${what}: stdout`);
  assert.equal(actual.stderr, expected.stderr, `${what}: stderr`);
}

for (const target of TARGETS) {
  describe(`pop2mqtt-linux-${target}`, { timeout: 600_000 * slowFactor(target) }, () => {
    let tmp = '';
    before(() => {
      tmp = openTempDir(`p2m-bin-${target}-`);
    });
    after(() => {
      // Make the read-only dir removable again.
      try { chmodSync(path.join(tmp, `ro-${target}`), 0o755); } catch { /* not created */ }
      rmSync(tmp, { recursive: true, force: true });
    });

    test('--version matches node bin/pop2mqtt.js and package.json', async () => {
      const [bin, ref] = await Promise.all([runBinary(target, ['--version']), runReference(['--version'])]);
      same(bin, ref, '--version');
      assert.equal(bin.code, 0);
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.match(bin.stdout, new RegExp(pkg.version.replace(/\./g, '\\.')));
    });

    test('schema prints the same valid JSON Schema as node', async () => {
      const [bin, ref] = await Promise.all([runBinary(target, ['schema']), runReference(['schema'])]);
      same(bin, ref, 'schema');
      const schema = JSON.parse(bin.stdout) as Record<string, unknown>;
      assert.equal(typeof schema, 'object');
      assert.ok(schema.properties && typeof schema.properties === 'object', 'schema has properties');
      assert.ok('mailboxes' in (schema.properties as object), 'schema describes mailboxes');
    });

    test('check --config config/example.yaml passes, like node', async () => {
      const opts = { env: exampleEnv, cwd: ROOT };
      const [bin, ref] = await Promise.all([
        runBinary(target, ['check', '--config', EXAMPLE], opts),
        runReference(['check', '--config', EXAMPLE], opts),
      ]);
      same(bin, ref, 'check example');
      assert.equal(bin.code, 0, bin.stderr);
    });

    test('errors (missing config, unknown command) exit like node', async () => {
      const missing = path.join(tmp, 'does-not-exist.yaml');
      for (const args of [['check', '--config', missing], ['no-such-command']]) {
        const [bin, ref] = await Promise.all([runBinary(target, args), runReference(args)]);
        same(bin, ref, args.join(' '));
        assert.notEqual(bin.code, 0, `${args.join(' ')} must fail`);
      }
    });

    test('runs from a read-only directory as an unprivileged user and writes nothing beside itself', async () => {
      const { dir, binary, confDir, stateDir } = deviceLayout(target, tmp);
      const config = path.join(confDir, 'config.yaml');
      const text = /^state_dir:/m.test(exampleText)
        ? exampleText.replace(/^state_dir:.*$/m, `state_dir: ${stateDir}`)
        : `state_dir: ${stateDir}\n${exampleText}`;
      writeFileSync(config, text, { mode: 0o644 });
      const before = snapshot(dir);
      const beforeConf = snapshot(confDir);
      const v = await runBinary(target, ['--version'], { binary, cwd: dir, uid: NOBODY });
      assert.equal(v.code, 0, v.stderr);
      const c = await runBinary(target, ['check', '--config', config], { binary, cwd: dir, uid: NOBODY, env: exampleEnv });
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(snapshot(dir), before, 'nothing written next to the binary');
      assert.deepEqual(snapshot(confDir), beforeConf, 'nothing written next to the config');
    });
  });
}
