// TLS session resumption across the polls of a daemon, measured on the wire: the real `pop2mqtt run` behind a counting relay in front of Dovecot's POP3S port; later polls skip the certificate exchange.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEconomyLab, tagged, type EconomyLab } from '../../scripts/bench/economy-lab.js';
import { startRelay, type Relay } from '../support/relay.js';
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
  const before = (await lab.dovecot.logoutLines()).length;
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
