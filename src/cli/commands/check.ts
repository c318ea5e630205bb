// `pop2mqtt check`: validate the config (schema, rules, state_dir writable, CA files parse) without connecting anywhere.
import type { CommandArgs } from '../command-args.js';
import { formatIssue } from '../../config/index.js';
import { checkConfigFiles } from '../../config/file-checks.js';
import { compileRules } from '../../rules/index.js';
import { loadOrReport } from './load.js';

export async function checkCommand(args: CommandArgs): Promise<number> {
  const loaded = await loadOrReport(args.config!, 'check');
  if (!loaded) return 1;
  const cfg = loaded.config;
  for (const mb of cfg.mailboxes) compileRules(cfg.rules, { trustedAuthservIds: cfg.trusted_authserv_ids, mailboxRuleNames: mb.rules, regexInputLimit: cfg.regex_input_limit });
  const fileIssues = await checkConfigFiles(loaded);
  if (fileIssues.length) {
    process.stderr.write(`pop2mqtt check: ${args.config}: invalid config\n${fileIssues.map(formatIssue).join('\n')}\n`);
    return 1;
  }
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
