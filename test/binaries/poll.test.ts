// A real `once` poll by each single binary (ARM under qemu) against private Dovecot and Mosquitto: the alert arrives, state is kept, nothing is written beside the binary.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startMosquitto, type MosquittoServer } from '../support/mosquitto.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';
import { NOBODY, TARGETS, openTempDir, deviceLayout, runBinary, slowFactor, snapshot } from '../support/binaries.js';

const USER = 'alice';
const PASS = 'binary-poll-pw-4821';

function motionMail(n: number): string {
  return [
    'From: "Front camera" <cam1@nvr.example>',
    'To: alice@example.org',
    `Subject: Motion detected on cam1 (#${n})`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <motion-${n}-${Date.now()}@nvr.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Motion was detected at the front door.',
    '',
  ].join('\r\n');
}

for (const target of TARGETS) {
  const slow = slowFactor(target);
  describe(`pop2mqtt-linux-${target} once`, { timeout: 300_000 * slow }, () => {
    let tmp = '';
    let dovecot: DovecotServer | undefined;
    let broker: MosquittoServer | undefined;
    let sub: Subscriber | undefined;

    before(async () => {
      tmp = openTempDir(`p2m-poll-${target}-`);
      [dovecot, broker] = await Promise.all([startDovecot({ users: [{ user: USER, pass: PASS }] }), startMosquitto()]);
      sub = await subscribe(broker.url, ['pop2mqtt/#']);
    });
    after(async () => {
      await sub?.close();
      await Promise.all([dovecot?.stop(), broker?.stop()]);
      try { chmodSync(path.join(tmp, `ro-${target}`), 0o755); } catch { /* not created */ }
      rmSync(tmp, { recursive: true, force: true });
    });

    test('publishes the alert, keeps UID state, and stays quiet on the next poll', async () => {
      const d = dovecot!;
      const s = sub!;
      const { dir, binary, confDir, stateDir } = deviceLayout(target, tmp);
      const ca = path.join(confDir, 'ca.pem');
      copyFileSync(d.caFile, ca);
      chmodSync(ca, 0o644);
      const config = path.join(confDir, 'config.yaml');
      writeFileSync(
        config,
        [
          `state_dir: ${stateDir}`,
          'mqtt:',
          `  url: ${broker!.url}`,
          'mailboxes:',
          '  - id: nvr',
          `    host: ${d.host}`,
          `    port: ${d.port}`,
          '    tls: starttls',
          `    ca_file: ${ca}`,
          '    servername: localhost',
          `    username: ${USER}`,
          '    password: ${MAIL_PASS}',
          '    existing: process',
          'rules:',
          '  - name: motion',
          '    when:',
          '      subject: { contains: "Motion detected" }',
          '',
        ].join('\n'),
        { mode: 0o644 },
      );
      await d.deliver(USER, motionMail(1));
      const roBefore = snapshot(dir);
      const confBefore = snapshot(confDir);
      const opts = { binary, cwd: dir, uid: NOBODY, env: { MAIL_PASS: PASS }, timeoutMs: 120_000 * slow };

      const first = await runBinary(target, ['once', '--config', config], opts);
      assert.equal(first.code, 0, `once failed:\n${first.stderr}`);
      const alert = await s.waitFor((m) => m.topic === 'pop2mqtt/alerts/motion', 10_000);
      assert.match(alert.text, /Motion detected on cam1 \(#1\)/);
      assert.doesNotMatch(first.stdout + first.stderr + alert.text, new RegExp(PASS), 'password never printed or published');

      // Headers were enough: TOP, no RETR.
      const [session] = await d.logoutLines({ atLeast: 1, timeoutMs: 5_000 });
      assert.equal(session!.retr, 0, session!.raw);
      assert.ok(session!.top >= 1, session!.raw);

      assert.ok(readdirSync(stateDir).length > 0, 'UID state written to state_dir');
      assert.deepEqual(snapshot(dir), roBefore, 'nothing written next to the binary');
      assert.deepEqual(snapshot(confDir), confBefore, 'nothing written next to the config');

      // Second poll of an unchanged mailbox: no new alert.
      const second = await runBinary(target, ['once', '--config', config], opts);
      assert.equal(second.code, 0, `second once failed:\n${second.stderr}`);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(s.on('pop2mqtt/alerts/motion').length, 1, 'the same mail is never alerted twice');

      // New mail after that: exactly one more alert.
      await d.deliver(USER, motionMail(2));
      const third = await runBinary(target, ['once', '--config', config], opts);
      assert.equal(third.code, 0, `third once failed:\n${third.stderr}`);
      const alerts = await s.waitForCount(2, 10_000, (m) => m.topic === 'pop2mqtt/alerts/motion');
      assert.match(alerts[1]!.text, /\(#2\)/);
    });
  });
}
