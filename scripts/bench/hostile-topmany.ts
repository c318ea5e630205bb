// Issue 13 point 2: peak RSS of one header-only poll of 30 mails with 8 MB header blocks (a hostile mailbox), against real Dovecot.
// Usage: node --import tsx scripts/bench/hostile-topmany.ts [--mails 30] [--header-mb 8] [--pipelining true|false]
//
// The poll (pollMailbox, the same code `once` runs, header rules only) runs in a child process so that its peak RSS
// (process.resourceUsage().maxRSS) counts the poll alone, not the Dovecot setup or the mail generation. Prints the
// poll result (failed = the oversized mails, alerts = the normal mails behind them) and the peak RSS.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    mails: { type: 'string', default: '30' },
    'header-mb': { type: 'string', default: '8' },
    pipelining: { type: 'string', default: 'true' },
    child: { type: 'string' },
  },
});

interface ChildJob { port: number; caFile: string; user: string; pass: string; stateDir: string; pipelining: boolean }

async function child(job: ChildJob): Promise<void> {
  const { pollMailbox } = await import('../../src/mailbox/poll.js');
  const { MailboxState } = await import('../../src/state/mailbox-state.js');
  const { Outbox } = await import('../../src/alerts/outbox.js');
  const { compileRules, createRateLimiter } = await import('../../src/rules/index.js');
  const { createLogger } = await import('../../src/log.js');
  const logger = createLogger({ level: 'error', write: () => {}, timestamps: false });
  const { state } = await MailboxState.load(job.stateDir, 'bench', logger);
  const outbox = await Outbox.open(path.join(job.stateDir, 'outbox'), { maxMessages: 1000, maxBytes: 1 << 24, whenFull: 'stop_polling' }, logger);
  const ruleSet = compileRules([{ name: 'alarm', when: { subject: { contains: 'ALARM' } } } as never], { trustedAuthservIds: [] });
  const rss0 = process.memoryUsage().rss;
  const t0 = process.cpuUsage();
  let outcome: string;
  try {
    const r = await pollMailbox({
      target: {
        id: 'bench', host: '127.0.0.1', port: job.port, tls: 'implicit', ca: await readFile(job.caFile),
        username: job.user, password: job.pass, auth: 'auto', allowInsecureAuth: false, keep: true, existing: 'process',
        maxMessageSize: 1 << 20, timeouts: { connectMs: 30_000, greetingMs: 30_000, commandMs: 60_000, sessionMs: 600_000 },
        pipelining: job.pipelining, fastUidl: true,
      },
      ruleSet, state, firstRun: true, outbox, baseTopic: 'bench', rateLimiter: createRateLimiter(), logger, ackTimeoutMs: 10,
    });
    outcome = `ok: new=${r.newMessages} failed=${r.failed} alerts=${r.alerts} bytes_in=${r.bytesIn}`;
  } catch (err) {
    outcome = `poll failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
  }
  const cpu = process.cpuUsage(t0);
  process.stdout.write(JSON.stringify({
    outcome, rssBeforeMB: +(rss0 / 2 ** 20).toFixed(1), peakRssMB: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    cpuS: +((cpu.user + cpu.system) / 1e6).toFixed(2),
  }) + '\n');
}

async function main(): Promise<void> {
  const { startDovecot } = await import('../../test/support/dovecot.js');
  const mails = Number(values.mails);
  const headerBytes = Number(values['header-mb']) * 2 ** 20;
  const user = 'bench';
  const pass = 'bench-Pop3-pw-8472';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-hostile-topmany-'));
  const dove = await startDovecot({ users: [{ user, pass }] });
  try {
    const line = `X-Pad: ${'p'.repeat(90)}\r\n`;
    const pad = line.repeat(Math.ceil(headerBytes / line.length));
    // Hostile mails (huge header blocks) with a normal alarm after each, so the poll also shows who still gets alerted.
    for (let i = 0; i < mails; i++) {
      await dove.deliverMany(user, [
        `From: spam${i}@evil.example\r\nSubject: ALARM ${i} with a huge header\r\nMessage-ID: <h${i}@evil.example>\r\n${pad}\r\nbody\r\n`,
        `From: nvr@nvr.local\r\nSubject: ALARM ${i} motion\r\nMessage-ID: <a${i}@nvr.local>\r\n\r\nmotion\r\n`,
      ]);
    }
    const job: ChildJob = { port: dove.tlsPort, caFile: dove.caFile, user, pass, stateDir: dir, pipelining: values.pipelining !== 'false' };
    const self = fileURLToPath(import.meta.url);
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify(job)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    process.stdout.write(`hostile-topmany: ${mails} mails with ${values['header-mb']} MB header blocks + ${mails} normal alarms, pipelining=${job.pipelining}\n${out}`);
  } finally {
    await dove.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (values.child) await child(JSON.parse(values.child) as ChildJob);
else await main();
