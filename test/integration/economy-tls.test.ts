// TLS session resumption across polls, measured on the wire against Dovecot: the daemon's later polls skip the certificate exchange, resume with a lean TLS 1.3 hello and skip CAPA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startEconomyLab, tagged, PASSWORD, type EconomyLab } from '../../scripts/bench/economy-lab.js';
import { startRelay, type Relay } from '../support/relay.js';
import { parseClientHello, TLS13_SUITES } from '../support/tls-hello.js';
import { Pop3Client, Pop3Memory } from '../../src/pop3/index.js';
import { startDaemon } from '../support/lab.js';
import { stopChild } from '../../scripts/bench/proc.js';

let lab: EconomyLab;
let relay: Relay;

before(async () => {
  // Dovecot's login service must outlive a connection for any client to resume (see RESUMABLE_LOGIN_CONF).
  lab = await startEconomyLab({ users: ['tls'], resumableTls: true });
  relay = await startRelay('127.0.0.1', lab.dovecot.tlsPort);
});
after(async () => {
  await relay?.close();
  await lab?.stop();
});

test('the daemon resumes its TLS session from the second poll on: fewer wire bytes than a full handshake, same POP3 dialogue', async () => {
  const u = 'tls';
  await lab.dovecot.deliverMany(u, [tagged('t1'), tagged('t2')]);
  const cfg = await lab.writeConfig(u, {
    port: relay.port,
    schedule: '* * * * * *',
    rules: `  - name: alarm
    when: { subject: { contains: "ALARM" } }
`,
  });
  await lab.once(u, cfg); // first run: state created, both messages handled
  relay.resetCounters();
  const idleOnce = await lab.once(u, cfg); // idle poll from a fresh process: full handshake
  assert.equal(idleOnce.logout.top, 0);
  const full = relay.connectionStats[0]!;

  relay.resetCounters();
  const before = (await lab.dovecot.settled()).length;
  const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
  let lines;
  try {
    lines = await lab.dovecot.logoutLines({ atLeast: before + 3, timeoutMs: 20_000 });
  } finally {
    await stopChild(d.child);
  }
  const polls = lines.slice(before, before + 3);
  for (const p of polls) assert.equal(p.top, 0, p.raw);
  // Same dialogue after login in every poll: what changes is the handshake.
  assert.deepEqual(polls.map((p) => [p.in, p.out]), polls.map(() => [idleOnce.logout.in, idleOnce.logout.out]));
  const conns = relay.connectionStats.slice(0, 3);
  assert.equal(conns.length, 3);
  const describe = `once ${full.fromServer}/${full.toServer}; daemon ${conns.map((c) => `${c.fromServer}/${c.toServer}`).join(', ')} (from/to server)`;
  // Poll 1 of the daemon has nothing to resume: about what the one-shot poll cost.
  assert.ok(Math.abs(conns[0]!.fromServer - full.fromServer) < 100, describe);
  // Polls 2 and 3 resume: the server no longer sends its certificate.
  for (const c of conns.slice(1)) assert.ok(c.fromServer < full.fromServer - 400, describe);
  assert.ok(conns[1]!.fromServer + conns[1]!.toServer < full.fromServer + full.toServer - 200, describe);
});

test('resuming: a lean TLS 1.3-only ClientHello and no CAPA (remembered from the session it resumes); opt-out asks again; STLS too', async () => {
  const u = 'tls';
  const ca = readFileSync(lab.dovecot.caFile);
  const stls = await startRelay('127.0.0.1', lab.dovecot.port);
  try {
    for (const [mode, r] of [['implicit', relay], ['starttls', stls]] as const) {
      r.resetCounters();
      const memory = new Pop3Memory();
      const connect = (session?: Buffer, rememberCapabilities?: boolean) =>
        Pop3Client.connect({ host: '127.0.0.1', port: r.port, tls: mode, ca, servername: 'localhost', tlsSession: session, rememberCapabilities, memory });
      // What the client writes before login: CAPA (6 B) and, for STLS, "STLS\r\n" (6 B).
      const stlsBytes = mode === 'starttls' ? 6 : 0;

      const first = await connect();
      assert.equal(first.tlsInfo?.resumed, false);
      assert.equal(first.tlsInfo?.cipher, 'TLS_AES_128_GCM_SHA256', 'AES-128-GCM preferred: shorter binder and Finished');
      assert.equal(first.stats.bytesOut, stlsBytes + 6 * (mode === 'starttls' ? 2 : 1), 'CAPA asked (before and after STLS)');
      const caps = first.capabilities!.lines;
      await first.login({ username: u, password: PASSWORD });
      await first.quit();
      const session = first.tlsSession!;
      assert.ok(session);

      const second = await connect(session);
      assert.equal(second.tlsInfo?.resumed, true, `${mode}: resumed`);
      assert.equal(second.tlsInfo?.protocol, 'TLSv1.3');
      assert.equal(second.stats.bytesOut, stlsBytes, `${mode}: no CAPA on a resumed session`);
      assert.deepEqual(second.capabilities!.lines, caps, 'the remembered capabilities');
      const login = await second.login({ username: u, password: PASSWORD, capaAfterLogin: false });
      assert.equal(login.mechanism, 'plain');
      assert.equal((await second.stat()).count >= 0, true);
      await second.quit();

      const optOut = await connect(second.tlsSession!, false);
      assert.equal(optOut.tlsInfo?.resumed, true);
      assert.equal(optOut.stats.bytesOut, stlsBytes + 6 * (mode === 'starttls' ? 2 : 1), 'rememberCapabilities: false asks CAPA again');
      await optOut.quit();

      // The hellos on the wire (for STLS the TLS record follows the plaintext STLS exchange).
      const hello = (i: number) => {
        const head = r.connectionStats[i]!.clientHead;
        return parseClientHello(mode === 'starttls' ? head.subarray(head.indexOf('STLS\r\n') + 6) : head);
      };
      const full = hello(0);
      const lean = hello(1);
      assert.ok(full.cipherSuites.some((c) => !TLS13_SUITES.includes(c)), 'the full hello also offers TLS 1.2 suites');
      assert.equal(full.cipherSuites.filter((c) => TLS13_SUITES.includes(c))[0], 0x1301, 'TLS_AES_128_GCM_SHA256 first');
      assert.deepEqual(lean.cipherSuites.filter((c) => c !== 0x00ff), [0x1301, 0x1303, 0x1302], `${mode}: lean hello offers TLS 1.3 suites only`);
      assert.ok(lean.extensions.has(41), 'lean hello carries the pre_shared_key');
      assert.ok(lean.recordBytes < full.recordBytes + lean.extensions.get(41)! - 100, `lean hello ${lean.recordBytes} B vs full ${full.recordBytes} B`);
    }
  } finally {
    await stls.close();
  }
});

test('against Dovecot, resumed or not: AUTH alone (nothing pipelined behind it), then STAT and `UIDL n` in one round trip', async () => {
  const u = 'tls';
  const ca = readFileSync(lab.dovecot.caFile);
  await lab.dovecot.deliverMany(u, [tagged('f1'), tagged('f2')]);
  const memory = new Pop3Memory();
  const connect = (session?: Buffer) => Pop3Client.connect({ host: '127.0.0.1', port: lab.dovecot.tlsPort, tls: 'implicit', ca, servername: 'localhost', tlsSession: session, memory });
  const login = { username: u, password: PASSWORD, capaAfterLogin: false };
  const first = await connect();
  let rt = first.stats.roundTrips;
  const r1 = await first.loginAndStat(login, 1);
  assert.equal(first.stats.roundTrips - rt, 2, 'AUTH, then STAT with the probe');
  assert.equal(r1.probeUid, await first.uidl(1));
  const count = r1.stat.count;
  assert.ok(count >= 2);
  const lastUid = await first.uidl(count);
  await first.quit();

  const second = await connect(first.tlsSession!);
  assert.equal(second.tlsInfo?.resumed, true);
  rt = second.stats.roundTrips;
  const r = await second.loginAndStat(login, count);
  assert.equal(second.stats.roundTrips - rt, 2, 'AUTH, then STAT with the probe');
  assert.equal(r.mechanism, 'plain');
  assert.equal(r.stat.count, count);
  assert.equal(r.probeUid, lastUid);
  assert.equal(await second.uidl(count + 1), null, 'the session is in TRANSACTION and answers normally');
  await second.quit();
});
