// `pop2mqtt check`: validate the config (schema, rules, files) without connecting anywhere.
import type { CommandArgs } from '../args.js';
import { compileRules } from '../../rules/index.js';
import { loadOrReport } from './load.js';

export async function checkCommand(args: CommandArgs): Promise<number> {
  const loaded = await loadOrReport(args.config!, 'check');
  if (!loaded) return 1;
  const cfg = loaded.config;
  for (const mb of cfg.mailboxes) compileRules(cfg.rules, { trustedAuthservIds: cfg.trusted_authserv_ids, mailboxRuleNames: mb.rules });
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(`${args.config}: OK (${cfg.mailboxes.length} mailbox${cfg.mailboxes.length === 1 ? '' : 'es'}, ${cfg.rules.length} rule${cfg.rules.length === 1 ? '' : 's'})\n`);
  return 0;
}
