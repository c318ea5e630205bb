// `pop2mqtt check`: validate the config (schema, rules, files) without connecting anywhere.
import type { CommandArgs } from '../args.js';
import { compileRules } from '../../rules/index.js';
import { loadOrReport } from './load.js';

export async function checkCommand(args: CommandArgs): Promise<number> {
  const loaded = await loadOrReport(args.config!, 'check');
  if (!loaded) return 1;
  const cfg = loaded.config;
  for (const mb of cfg.mailboxes) compileRules(cfg.rules, { trustedAuthservIds: cfg.trusted_authserv_ids, mailboxRuleNames: mb.rules });
  const warnings = [...loaded.warnings];
  if (!cfg.trusted_authserv_ids.length) {
    cfg.rules.forEach((r, i) => {
      if (JSON.stringify(r.when ?? {}).includes('"authenticated":true')) {
        warnings.push(`rules[${i}] (${r.name}) uses authenticated: true but trusted_authserv_ids is empty, so it can never match`);
      }
    });
  }
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(`${args.config}: OK (${cfg.mailboxes.length} mailbox${cfg.mailboxes.length === 1 ? '' : 'es'}, ${cfg.rules.length} rule${cfg.rules.length === 1 ? '' : 's'})\n`);
  return 0;
}
