// `pop2mqtt test-rule`: evaluate .eml files against the configured rules offline and show what would be fetched and published.
import { readFile } from 'node:fs/promises';
import type { CommandArgs } from '../command-args.js';
import { compileRules } from '../../rules/index.js';
import { explainMessage, formatExplain } from '../../alerts/explain.js';
import { loadOrReport } from './load.js';

export async function testRuleCommand(args: CommandArgs): Promise<number> {
  // Offline: the mailbox and broker credentials are never used, so they need not be set (rule secrets still must).
  const loaded = await loadOrReport(args.config!, 'test-rule', { offline: true });
  if (!loaded) return 2;
  const cfg = loaded.config;
  const mb = args.mailbox ? cfg.mailboxes.find((m) => m.id === args.mailbox) : cfg.mailboxes[0];
  if (!mb) {
    process.stderr.write(`pop2mqtt test-rule: unknown mailbox "${args.mailbox}"\n`);
    return 2;
  }
  const ruleSet = compileRules(cfg.rules, { trustedAuthservIds: cfg.trusted_authserv_ids, mailboxRuleNames: mb.rules, regexInputLimit: cfg.regex_input_limit });
  let anyMatched = false;
  const results = [];
  for (const file of args.positionals) {
    let raw: Buffer;
    try {
      raw = await readFile(file);
    } catch (err) {
      process.stderr.write(`pop2mqtt test-rule: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return 2;
    }
    const res = await explainMessage(raw, ruleSet, { mailbox: mb.id, baseTopic: cfg.mqtt.base_topic, maxMessageSize: mb.max_message_size });
    if (res.matched.length) anyMatched = true;
    results.push({ file, ...res });
    if (!args.json) process.stdout.write(`== ${file}\n${formatExplain(res)}\n`);
  }
  if (args.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  return anyMatched ? 0 : 1;
}
