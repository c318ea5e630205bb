// Economy of fetching against real Dovecot, through the real CLI: RETR only where a rule needs the body, never for messages over max_message_size, and pipelined TOP keeps the round trips of a poll constant however much mail is new.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEconomyLab, tagged, type EconomyLab } from '../../scripts/bench/economy-lab.js';
import { startDelayProxy } from '../../scripts/bench/delay-proxy.js';
import { roundTripsOver } from '../../scripts/bench/rawlog.js';
import { subscribe, type Subscriber } from '../support/mqtt-subscriber.js';

let lab: EconomyLab;
let sub: Subscriber;

before(async () => {
  lab = await startEconomyLab({ users: ['body', 'pipe5', 'pipe150', 'serial'] });
  sub = await subscribe(lab.mosquitto.url, ['econ-body/alerts/#']);
});
after(async () => {
  await sub?.close();
  await lab?.stop();
});

const HEADER_RULE = `  - name: alarm
    when:
      subject: { regex: "^ALARM (?<tag>\\\\S+)$" }
    publish: { topic: "alerts/{{tag}}" }
`;

const news = (i: number) =>
  `From: News <news@shop.example>\r\nTo: alice@home.example\r\nSubject: Weekly deals ${i}\r\nMessage-ID: <news-${i}@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${'needle in a newsletter\r\n'.repeat(50)}`;

test('RETR only for messages whose rule still needs the body, and never for a message over max_message_size', async () => {
  const u = 'body';
  const cfg = await lab.writeConfig(u, {
    mailboxExtra: '    max_message_size: 20KB\n',
    rules: `  - name: needle
    when:
      subject: { regex: "^ALARM (?<tag>\\\\S+)$" }
      body: { contains: "needle" }
    publish: { topic: "alerts/{{tag}}" }
`,
  });
  await lab.dovecot.deliverMany(u, [
    tagged('small-needle', { body: 'there is a needle here\r\n' }), // 1: RETR, alerts
    tagged('big-needle', { body: `${'x'.repeat(70)}\r\n`.repeat(600) + 'needle\r\n' }), // 2: 43 KB > 20 KB: never RETR
    news(1), // 3: subject decides from headers: no RETR
    tagged('small-hay', { body: 'only hay\r\n' }), // 4: RETR, no alert
    news(2), // 5: no RETR
  ]);
  const p1 = await lab.once(u, cfg);
  const retrs = p1.rawlog.exchanges.filter((e) => e.shape === 'RETR n').map((e) => e.command);
  assert.deepEqual(retrs, ['RETR 1', 'RETR 4'], `RETR commands: ${retrs.join(', ')}`);
  assert.equal(p1.logout.retr, 2, p1.logout.raw);
  assert.equal(p1.logout.top, 5, 'every message is previewed with TOP n 0 first');
  const got = await sub.waitForCount(1, 10_000);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(sub.messages.map((m) => m.topic), ['econ-body/alerts/small-needle']);
  assert.equal(got.length, 1);

  // Later polls fetch nothing again, oversize message included.
  const p2 = await lab.once(u, cfg);
  assert.equal(p2.logout.retr, 0, p2.logout.raw);
  assert.equal(p2.logout.top, 0, p2.logout.raw);
  const everRetrieved = (await lab.rawlog(u)).flatMap((s) => s.exchanges.filter((e) => e.shape === 'RETR n').map((e) => e.command));
  assert.ok(!everRetrieved.includes('RETR 2'), 'the oversize message is never retrieved');
});

test('pipelined TOP over a 30 ms round trip: 150 new messages ride on a few round trips; a serial client pays one per TOP', async () => {
  // The measure: Dovecot's rawlog time stamps. A command that arrives after the server had answered everything, and
  // had been idle longer than the link's one-way delay, cost the client a round trip. The delay proxy makes every
  // round trip at least 30 ms, so client CPU time cannot pass for one.
  const proxy = await startDelayProxy('127.0.0.1', lab.dovecot.tlsPort, 15);
  try {
    const mails = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => tagged(`${prefix}${i + 1}`, { bodyBytes: 100 }));
    await lab.dovecot.deliverMany('pipe5', mails('a', 5));
    await lab.dovecot.deliverMany('pipe150', mails('b', 150));
    await lab.dovecot.deliverMany('serial', mails('c', 30));
    const run = async (u: string, extra = '') => lab.once(u, await lab.writeConfig(u, { rules: HEADER_RULE, port: proxy.port, mailboxExtra: extra }));
    const small = await run('pipe5');
    const big = await run('pipe150');
    const serial = await run('serial', '    pipelining: false\n');
    assert.equal(small.logout.top, 5);
    assert.equal(big.logout.top, 150);
    assert.equal(serial.logout.top, 30);
    const rts = (s: typeof small) => roundTripsOver(s.rawlog, 10);
    const topRts = (s: typeof small) => s.rawlog.exchanges.filter((e) => e.shape === 'TOP n 0' && e.idleBeforeMs > 10).length;
    const show = (s: typeof small) => `${rts(s)} round trips: ${s.rawlog.exchanges.map((e) => `${e.idleBeforeMs > 10 ? '|' : ''}${e.shape === 'TOP n 0' ? 't' : ` ${e.shape} `}`).join('')}`;
    assert.ok(topRts(serial) >= 30, `the measure sees a serial client: ${show(serial)}`);
    if (process.env.ECONOMY_VERBOSE) console.log(`small: ${show(small)}\nbig: ${show(big)}\nserial: ${show(serial)}`);
    // Pipelined: a window of 128 commands in flight, written without Nagle delays, so 150 TOPs cost 2 round trips
    // (measured); the bound leaves room for a slow machine splitting a window.
    assert.ok(topRts(big) <= 4, `150 TOPs in few round trips.\nsmall: ${show(small)}\nbig: ${show(big)}`);
    assert.ok(topRts(big) * 5 <= topRts(serial) * 150 / 30, `pipelined costs at most a fifth of serial per TOP.\nbig: ${show(big)}\nserial: ${show(serial)}`);
  } finally {
    await proxy.close();
  }
});
