// A server refusing a login with [LOGIN-DELAY]: the real `pop2mqtt once` waits what the server's CAPA announced (LOGIN-DELAY n), not a fixed 300 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from '../support/certs.js';
import { serveMailbox, startHostilePop3, tlsMaterial } from '../support/hostile-pop3.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { runCli } from '../support/lab.js';
import { agentYaml } from '../support/config-yaml.js';

let dir: string;
let certs: TestCerts;
let mosquitto: MosquittoServer;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-login-delay-'));
  certs = await makeTestCA(path.join(dir, 'tls'));
  mosquitto = await startMosquitto();
});
after(async () => {
  await mosquitto?.stop();
  await rm(dir, { recursive: true, force: true });
});

for (const [announced, wantSec] of [[900, 900], [null, 300]] as const) {
  test(`[LOGIN-DELAY] with ${announced === null ? 'no delay announced: 300 s' : `CAPA LOGIN-DELAY ${announced}: that long`}`, { timeout: 60_000 }, async () => {
    const pop = await startHostilePop3(
      (c) => serveMailbox(c, {
        capa: ['USER', 'TOP', 'UIDL', 'RESP-CODES', 'SASL PLAIN', ...(announced === null ? [] : [`LOGIN-DELAY ${announced}`])],
        handle: (p, verb) => {
          if (verb !== 'AUTH') return false;
          p.write('-ERR [LOGIN-DELAY] logged in too recently\r\n');
          return true;
        },
      }).then(() => undefined),
      { implicitTls: tlsMaterial(certs) },
    );
    try {
      const cfg = path.join(dir, `delay-${announced}.yaml`);
      await writeFile(cfg, agentYaml({
        mqttUrl: mosquitto.url, stateDir: `./state-${announced}`, port: pop.port, caFile: certs.caFile, username: 'user', password: 'pass',
        rules: '  - name: any\n    when: { subject: { contains: "x" } }\n',
      }), { mode: 0o600 });
      const r = await runCli(['once', '--config', cfg], { cwd: dir, timeoutMs: 30_000 });
      assert.notEqual(r.code, 0, 'a refused login fails the one-shot poll');
      const line = r.stderr.split('\n').find((l) => l.includes('poll failed'));
      assert.ok(line, r.stderr);
      assert.match(line!, /ELOGIN_DELAY/);
      assert.match(line!, new RegExp(`retry_in_s=${wantSec}\\b`), line);
      assert.equal(pop.conns.length, 1, 'one login attempt');
    } finally {
      await pop.close();
    }
  });
}
