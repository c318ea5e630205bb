// Measures what broker clients can make the agent do: peak RSS after a 200 MB test_rule request, and POP3 logins for a burst of 40 poll requests (issue 13, point 5).
// Usage: node --import tsx scripts/bench/request-flood.ts [path/to/pop2mqtt.cjs] [protocol 4|5]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { startLab, minimalConfig, until, USER } from '../../test/support/lab.js';
import { spawn } from 'node:child_process';

const bundle = path.resolve(process.argv[2] ?? 'dist/pop2mqtt.cjs');
const protocol = Number(process.argv[3] ?? 5);
const rssMb = (pid: number, key: 'VmRSS' | 'VmHWM') => Number(/(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(key))!)![1]) / 1024;

const lab = await startLab();
try {
  const yaml = minimalConfig(lab, { schedule: '0 0 1 1 *', existing: 'process' }).replace(`  url: ${lab.mosquitto.url}\n`, `  url: ${lab.mosquitto.url}\n  protocol_version: ${protocol}\n`);
  const cfg = await lab.writeConfig(yaml);
  const child = spawn(process.execPath, [bundle, 'run', '--config', cfg], { env: lab.env, cwd: lab.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  await until(() => /pop2mqtt started/.test(out), 30_000, 'started');
  const client = await mqtt.connectAsync(lab.mosquitto.url, { protocolVersion: 5 });
  const responses: string[] = [];
  await client.subscribeAsync('pop2mqtt/bridge/response/#', { qos: 1 });
  client.on('message', (t, p) => responses.push(`${t} ${p.toString()}`));
  await new Promise((r) => setTimeout(r, 1000));
  const idle = rssMb(child.pid!, 'VmRSS');
  const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(200 * 1024 * 1024, 0x61)]);
  await client.publishAsync('pop2mqtt/bridge/request/test_rule', big, { qos: 1 });
  await client.publishAsync('pop2mqtt/bridge/request/status', JSON.stringify({ transaction: 'after' }), { qos: 1 });
  const t0 = Date.now();
  // Bounded: the old agent spent minutes on it; the peak is what matters.
  const answered = await until(() => responses.some((r) => r.includes('"after"')), 240_000, 'the status answer after the big request').then(() => true, () => false);
  const statusAfterS = answered ? Math.round((Date.now() - t0) / 100) / 10 : null;
  await new Promise((r) => setTimeout(r, 2000));
  const peak = rssMb(child.pid!, 'VmHWM');
  // 40 poll requests in 4 s, as in the issue.
  const sessionsBefore = (await lab.dovecot.logoutLines()).filter((l) => l.user === USER).length;
  const before = responses.length;
  for (let i = 0; i < 40; i++) {
    await client.publishAsync('pop2mqtt/bridge/request/poll', JSON.stringify({ mailbox: 'home', transaction: `p${i}` }), { qos: 1 });
    await new Promise((r) => setTimeout(r, 100));
  }
  await until(() => responses.filter((r) => r.includes('response/poll')).length >= 40, 180_000, '40 poll answers');
  await new Promise((r) => setTimeout(r, 2000));
  const sessions = (await lab.dovecot.logoutLines()).filter((l) => l.user === USER).length - sessionsBefore;
  const pollAnswers = responses.slice(before).filter((r) => r.includes('response/poll'));
  console.log(JSON.stringify({
    bundle, protocol, rss_idle_mb: Math.round(idle), peak_rss_after_200mb_request_mb: Math.round(peak), status_answered_after_s: statusAfterS,
    big_request_answer: responses.find((r) => r.includes('response/test_rule'))?.slice(0, 160) ?? '(none: never delivered)',
    poll_requests_in_4s: 40, pop3_sessions: sessions,
    answers: { busy: pollAnswers.filter((r) => r.includes('busy')).length, coalesced: pollAnswers.filter((r) => r.includes('coalesced')).length },
  }, null, 1));
  await client.endAsync();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('close', r));
} finally {
  await lab.stop();
}
