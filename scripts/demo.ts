// The demo behind `npm run demo`: seeds a private Dovecot mailbox, runs `pop2mqtt run` against a private Mosquitto, prints alerts live.
import { startLab, minimalConfig, startDaemon, until } from '../test/support/lab.js';
import { makeMail, fakeJpeg } from '../test/support/maildir.js';
import { subscribe } from '../test/support/mqtt-subscriber.js';

const say = (s: string) => process.stdout.write(s + '\n');

function alarm(camera: number, event: string, withSnapshot = false): string {
  return makeMail({
    from: 'NVR <nvr@nvr.local>', to: 'alice@home.example', subject: `ALARM: ${event} Camera ${camera}`,
    body: `Event: ${event}\r\nCamera: ${camera}\r\nTime: ${new Date().toISOString()}\r\n`,
    attachments: withSnapshot ? [{ filename: `cam${camera}.jpg`, contentType: 'image/jpeg', content: fakeJpeg(40_000, camera) }] : undefined,
  });
}

function newsletter(i: number): string {
  return makeMail({ from: 'News <news@shop.example>', to: 'alice@home.example', subject: `Weekly deals #${i}`, body: 'Lorem ipsum dolor sit amet. '.repeat(2000) });
}

async function main(): Promise<void> {
  say('== starting a private Dovecot (POP3/TLS) and Mosquitto on 127.0.0.1 ...');
  const lab = await startLab();
  try {
    say(`   dovecot pop3s 127.0.0.1:${lab.dovecot.tlsPort}, mosquitto ${lab.mosquitto.url}`);
    await lab.dovecot.deliverMany('alice', [
      alarm(1, 'Motion Detected', true), newsletter(1), alarm(2, 'Line Crossing'),
      makeMail({ from: 'UPS <ups@nas.local>', to: 'alice@home.example', subject: 'UPS on battery power', body: 'Input power lost.' }),
      newsletter(2), alarm(3, 'Motion Detected', true),
    ]);
    say('== seeded the mailbox: 3 NVR alarm mails (2 with JPEG snapshots), 1 UPS notice, 2 newsletters');
    const rules = `  - name: camera-motion
    when:
      from: { contains: "@nvr.local" }
      subject: { regex: "^ALARM: (?<event>.+?) (?<camera>Camera \\\\d+)$" }
    publish:
      topic: "alerts/{{camera}}"
  - name: ups-notice
    when:
      from: { domain: { is: "nas.local" } }
      subject: { contains: "UPS" }
    publish:
      topic: "power/ups"
`;
    const cfg = await lab.writeConfig(minimalConfig(lab, { existing: 'process', schedule: '*/2 * * * * *', rules }));
    const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/#']);
    sub.client.on('message', (topic, payload) => {
      const text = payload.toString('utf8');
      say(`   [mqtt] ${topic}  ${text.length > 300 ? text.slice(0, 300) + '...' : text}`);
    });
    say(`== running: pop2mqtt run --config ${cfg}   (polls every 2 s)`);
    const daemon = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
    const alerts = () => sub.messages.filter((m) => m.topic.startsWith('pop2mqtt/alerts/') || m.topic === 'pop2mqtt/power/ups').length;
    await until(() => alerts() >= 4, 30_000, 'the first four alerts');
    say('== two more alarm mails arrive ...');
    await lab.dovecot.deliverMany('alice', [alarm(4, 'Tamper'), newsletter(3), alarm(1, 'Motion Detected')]);
    await until(() => alerts() >= 6, 30_000, 'two more alerts');
    await new Promise((r) => setTimeout(r, 2500));
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    say('== agent log:');
    for (const line of daemon.output().trim().split('\n')) say(`   ${line}`);
    say(`== agent exited with code ${exit.code}`);
    const sessions = await lab.dovecot.logoutLines();
    say('== Dovecot logout lines (header previews only: retr=0):');
    for (const s of sessions) say(`   ${s.raw.replace(/^.*?pop3\(/, 'pop3(')}`);
    say(`== ${alerts()} alerts received; ${sessions.reduce((a, s) => a + s.retr, 0)} RETR; ${sessions.reduce((a, s) => a + s.top, 0)} TOP over ${sessions.length} sessions`);
    await sub.close();
  } finally {
    await lab.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
