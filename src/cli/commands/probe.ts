// `pop2mqtt probe`: connect to each mailbox and print what a user needs to diagnose it (TLS, certificate, CAPA, auth, counts).
import type { CommandArgs } from '../args.js';
import { loadOrReport } from './load.js';
import { probeMailbox, formatProbe } from '../../mailbox/probe.js';
import path from 'node:path';

export async function probeCommand(args: CommandArgs): Promise<number> {
  const loaded = await loadOrReport(args.config!, 'probe');
  if (!loaded) return 2;
  const boxes = loaded.config.mailboxes.filter((m) => !args.mailbox || m.id === args.mailbox);
  if (!boxes.length) {
    process.stderr.write(`pop2mqtt probe: unknown mailbox "${args.mailbox}"\n`);
    return 2;
  }
  let code = 0;
  const all = [];
  for (const mb of boxes) {
    const report = await probeMailbox(mb, { configDir: path.dirname(loaded.file) });
    if (!report.loggedIn) code = 1;
    all.push(report);
    if (!args.json) process.stdout.write(formatProbe(report) + '\n');
  }
  if (args.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
  return code;
}
