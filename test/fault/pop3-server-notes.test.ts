// Fault: a server that lists SASL PLAIN but refuses it with a plain -ERR; the agent logs in with the next mechanism, counts no failed login, and remembers the refusal in servers.json across processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTestCA, type TestCerts } from '../support/certs.js';
import { serveMailbox, startHostilePop3, tlsMaterial, message, type HostileServer } from '../support/hostile-pop3.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { runCli } from '../support/lab.js';
import { agentYaml } from '../support/config-yaml.js';
import { serverKeyOf } from '../../src/pop3/index.js';

let dir: string;
let certs: TestCerts;
let mosquitto: MosquittoServer;
let peer: HostileServer;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-notes-'));
  certs = await makeTestCA(path.join(dir, 'tls'));
  mosquitto = await startMosquitto();
  peer = await startHostilePop3(async (c) => {
    await serveMailbox(c, {
      capa: ['USER', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'SASL PLAIN'],
      user: 'alice',
      pass: 'alice-Notes-pw',
      messages: [message('ALARM one', 'x')],
      handle: (p, verb) => (verb === 'AUTH' ? (p.write('-ERR Unsupported authentication mechanism.\r\n'), true) : false),
    });
  }, { implicitTls: tlsMaterial(certs) });
});
after(async () => {
  await peer?.close();
  await mosquitto?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('`once` twice: PLAIN refused without a code, USER works, no failed login counted; the second process goes straight to USER', { timeout: 120_000 }, async () => {
  const cfg = path.join(dir, 'config.yaml');
  await writeFile(cfg, agentYaml({
    mqttUrl: mosquitto.url, stateDir: './state', id: 'notes', port: peer.port, caFile: certs.caFile, username: 'alice',
    mailboxExtra: '    existing: process\n',
    rules: '  - name: alarm\n    when: { subject: { contains: "ALARM" } }\n    publish: { topic: "alerts/notes" }\n',
  }), { mode: 0o600 });
  const env = { ...process.env, POP3_PASSWORD: 'alice-Notes-pw' };
  for (let i = 0; i < 2; i++) {
    const r = await runCli(['once', '--config', cfg], { env, cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `once ${i + 1}:\n${r.stderr}`);
  }
  const fp = new X509Certificate(await readFile(certs.certFile)).fingerprint256;
  const notes = JSON.parse(await readFile(path.join(dir, 'state', 'servers.json'), 'utf8')) as { servers: Record<string, { refusedMechanisms: string[] }> };
  assert.deepEqual(Object.keys(notes.servers), [serverKeyOf('127.0.0.1', peer.port, fp)]);
  assert.deepEqual(notes.servers[serverKeyOf('127.0.0.1', peer.port, fp)]!.refusedMechanisms, ['plain']);
  const state = JSON.parse((await readFile(path.join(dir, 'state', 'notes.state.json'), 'utf8')).split('\n')[1]!) as { authFailures: number[] };
  assert.deepEqual(state.authFailures, [], 'a plain -ERR to one mechanism is not a failed login');
  const verbs = peer.conns.map((c) => c.received.map((l) => l.split(' ')[0]).filter((v) => v === 'AUTH' || v === 'USER' || v === 'PASS'));
  assert.deepEqual(verbs, [['AUTH', 'USER', 'PASS'], ['USER', 'PASS']]);
});
