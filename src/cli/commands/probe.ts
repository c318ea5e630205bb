// `pop2mqtt probe`: connect to each mailbox and print what a user needs to diagnose it (TLS, certificate, CAPA, auth, counts).
import type { CommandArgs } from '../command-args.js';
import { loadOrReport } from './load.js';
import { probeMailbox, formatProbe } from './probe-mailbox.js';
import path from 'node:path';
import { createLogger, effectiveLogLevel } from '../../log.js';

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
  const configDir = path.dirname(loaded.file);
  // OAuth mailboxes get a token the way the agent gets one (a rotated refresh token is saved in the state dir too).
  const { MailboxTokens } = await import('../../oauth/mailbox-tokens.js');
  const tokens = new MailboxTokens({ logger: createLogger({ level: effectiveLogLevel(loaded.config.log_level), format: loaded.config.log_format }).child('oauth') });
  const stateDir = path.resolve(configDir, loaded.config.state_dir);
  for (const mb of boxes) {
    const hooks = tokens.hooksFor(mb, stateDir);
    const report = await probeMailbox(mb, { configDir, accessToken: hooks?.accessToken });
    if (!report.loggedIn) code = 1;
    all.push(report);
    if (!args.json) process.stdout.write(formatProbe(report) + '\n');
  }
  if (args.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
  return code;
}
