// Fetch economy of mixed rule sets against real Dovecot: exact TOP and RETR counts and bytes from its logout line,
// the size guard, and attachments published as raw bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Pop3Client } from '../../src/pop3/index.js';
import { startLab, minimalConfig, runCli, USER, type Lab } from '../support/lab.js';
import { makeMail, fakeJpeg } from '../support/maildir.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';

let lab: Lab;
let sub: Subscriber;
before(async () => {
  lab = await startLab();
  sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/#']);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

const RULES = `  - name: snapshot
    when:
      from: { domain: { is: "nvr.local" } }
      attachment: { type: "image/*" }
    publish: { topic: "cam/alert" }
    attachments: { topic: "cam/snapshot", types: ["image/*"], max_size: 1MB }
  - name: ups-preview
    when:
      from: { address: { is: "ups@nas.local" } }
      preview: { lines: 5, contains: "ONBATT" }
    publish: { topic: "power/ups" }
  - name: big-mail
    when:
      size: { over: 150KB }
    publish: { topic: "mail/big" }
  - name: huge-body
    when:
      subject: { is: "Huge" }
    body: true
    publish: { topic: "mail/huge-body" }
`;

test('each message climbs only as far as a rule that can still match needs; bytes are exactly those of the fetched stages', async () => {
  const jpeg = fakeJpeg(30_000, 7);
  const mails = [
    makeMail({ from: 'nvr@nvr.local', subject: 'Motion', body: 'see snapshot', attachments: [{ filename: 'cam.jpg', contentType: 'image/jpeg', content: jpeg }] }), // RETR, match
    makeMail({ from: 'nvr@nvr.local', subject: 'Motion, no picture', body: 'no snapshot' }), // RETR, no match
    makeMail({ from: 'news@shop.example', subject: 'Deals', body: 'z'.repeat(100_000) }), // headers only
    makeMail({ from: 'ups@nas.local', subject: 'UPS event', body: 'line1\r\nONBATT since 10:00\r\nline3\r\n' + 'pad\r\n'.repeat(50) }), // TOP 5, match
    makeMail({ from: 'nvr@nvr.local', subject: 'Huge', body: 'q'.repeat(300_000) }), // over max_message_size: never RETR
  ];
  await lab.dovecot.deliverMany(USER, mails);
  const cfg = await lab.writeConfig(minimalConfig(lab, {
    existing: 'process', rules: RULES, stateDir: './state-fetch',
    mailboxExtra: '    max_message_size: 200KB\n',
  }), 'fetch.yaml');
  const before = (await lab.dovecot.settled()).length;
  const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const [s] = (await lab.dovecot.logoutLines({ atLeast: before + 1 })).slice(before);
  assert.ok(s);
  // TOP 0 for all five, plus TOP 5 for the UPS mail only.
  assert.equal(s.top, 6, s.raw);
  // RETR for the two NVR mails under the size guard only.
  assert.equal(s.retr, 2, s.raw);

  // Reference session: exactly the fetches the plan calls for, done by hand. Dovecot's own byte accounting must agree.
  const ref = await Pop3Client.connect({ host: '127.0.0.1', port: lab.dovecot.tlsPort, tls: 'implicit', ca: readFileSync(lab.dovecot.caFile) });
  await ref.login({ username: USER, password: lab.env.POP3_PASSWORD! });
  for (let m = 1; m <= 5; m++) await ref.top(m, 0);
  await ref.top(4, 5);
  await ref.retr(1);
  await ref.retr(2);
  await ref.quit();
  const [refLine] = (await lab.dovecot.logoutLines({ atLeast: before + 2 })).slice(before + 1);
  assert.ok(refLine);
  assert.equal(s.topBytes, refLine.topBytes, `${s.raw}\nreference: ${refLine.raw}`);
  assert.equal(s.retrBytes, refLine.retrBytes, `${s.raw}\nreference: ${refLine.raw}`);

  const snap = await sub.waitFor((m) => m.topic === 'pop2mqtt/cam/snapshot', 10_000);
  assert.ok(snap.payload.equals(jpeg), 'the attachment arrives byte for byte');
  const meta = (await sub.waitFor((m) => m.topic === 'pop2mqtt/cam/snapshot/meta', 10_000)).json as Record<string, unknown>;
  assert.equal(meta.content_type, 'image/jpeg');
  assert.equal(meta.size, jpeg.length);
  await sub.waitFor((m) => m.topic === 'pop2mqtt/power/ups', 10_000);
  const [big] = await sub.waitForCount(1, 10_000, (m) => m.topic === 'pop2mqtt/mail/big');
  assert.equal((big!.json as Record<string, unknown>).subject, 'Huge', 'a size rule alerts from the LIST size alone');
  const huge = (await sub.waitFor((m) => m.topic === 'pop2mqtt/mail/huge-body', 10_000)).json as Record<string, unknown>;
  assert.equal(huge.oversize, true, 'a body rule on mail over max_message_size alerts from the headers, marked oversize');
  const camAlerts = sub.messages.filter((m) => m.topic === 'pop2mqtt/cam/alert');
  assert.equal(camAlerts.length, 1, 'only the mail with a picture matches the snapshot rule');
});
