// Argument parsing and help texts for every subcommand; the commands themselves live in ./commands/.
import { parseArgs } from 'node:util';
import type { CommandArgs } from './command-args.js';

// Commands are loaded on demand: `run` never pays for the MIME parser of `test-rule`, nor `--version` for anything.

export class UsageError extends Error {}

export interface Command {
  summary: string;
  help: string;
  needsConfig: boolean;
  positionals: 'none' | 'some';
  run(args: CommandArgs): Promise<number>;
}

const CONFIG_OPT = '  -c, --config FILE   the YAML config file (required)\n';
const HELP_OPT = '  -h, --help          show this help\n';

export const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run the daemon: poll every mailbox on its schedule until SIGINT/SIGTERM',
    help: `Usage: pop2mqtt run --config FILE\n\nPolls each mailbox on its schedule, publishes alerts, logs one line per poll,\nand stops cleanly on SIGINT or SIGTERM.\n\nOptions:\n${CONFIG_OPT}${HELP_OPT}`,
    needsConfig: true, positionals: 'none', run: async (a) => (await import('./commands/run.js')).runCommand(a),
  },
  once: {
    summary: 'poll every mailbox once, publish, and exit (0 ok, 1 a mailbox failed)',
    help: `Usage: pop2mqtt once --config FILE [--mailbox ID]\n\nPolls every mailbox (or one) once, waits for the broker to acknowledge the alerts, and exits.\nExit status: 0 on success, 1 when a mailbox failed or alerts stay unacknowledged (reason on stderr), 2 on a config error.\n\nOptions:\n${CONFIG_OPT}  -m, --mailbox ID    only this mailbox\n${HELP_OPT}`,
    needsConfig: true, positionals: 'none', run: async (a) => (await import('./commands/once.js')).onceCommand(a),
  },
  check: {
    summary: 'validate the config; every error names the key path and the YAML line',
    help: `Usage: pop2mqtt check --config FILE\n\nValidates the config without connecting anywhere. Exit status 0 when valid, 1 otherwise.\n\nOptions:\n${CONFIG_OPT}${HELP_OPT}`,
    needsConfig: true, positionals: 'none', run: async (a) => (await import('./commands/check.js')).checkCommand(a),
  },
  schema: {
    summary: 'print the JSON Schema of the config (for editor autocompletion)',
    help: `Usage: pop2mqtt schema\n\nPrints the JSON Schema of the config file, generated from the validator itself.\n\nOptions:\n${HELP_OPT}`,
    needsConfig: false, positionals: 'none', run: async () => (await import('./commands/schema.js')).schemaCommand(),
  },
  'test-rule': {
    summary: 'show how the rules treat .eml files, without connecting anywhere',
    help: `Usage: pop2mqtt test-rule --config FILE MESSAGE.eml [...]\n\nFor each message: every rule with the conditions that matched or failed and the values seen,\nwhat the agent would fetch (nothing, TOP 0, TOP N or RETR), and the exact topics and payloads.\nExit status: 0 when at least one rule matched, 1 otherwise, 2 on errors.\n\nOptions:\n${CONFIG_OPT}  --json              print JSON instead of text\n  -m, --mailbox ID    evaluate as this mailbox (its rule list); default the first\n${HELP_OPT}`,
    needsConfig: true, positionals: 'some', run: async (a) => (await import('./commands/test-rule.js')).testRuleCommand(a),
  },
  probe: {
    summary: 'diagnose the connection to each mailbox (TLS, certificate, CAPA, auth, counts)',
    help: `Usage: pop2mqtt probe --config FILE [--mailbox ID]\n\nConnects to each mailbox and prints the greeting, CAPA before and after STLS and login, TLS protocol\nand cipher, the certificate, the auth mechanisms offered and chosen, the message count and size,\nand whether TOP, UIDL and PIPELINING are usable, followed by warnings. Secrets are never printed.\nExit status 0 when every mailbox could log in, 1 otherwise.\n\nOptions:\n${CONFIG_OPT}  -m, --mailbox ID    only this mailbox\n  --json              print JSON\n${HELP_OPT}`,
    needsConfig: true, positionals: 'none', run: async (a) => (await import('./commands/probe.js')).probeCommand(a),
  },
};

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `Usage: pop2mqtt <command> [options]\n\npop2mqtt polls POP3 mailboxes with header previews and publishes matching mail as MQTT alerts.\n\nCommands:\n${lines.join('\n')}\n\nOptions:\n  -h, --help      help (also: pop2mqtt <command> --help)\n  -V, --version   print the version\n`;
}

export function parseCommandArgs(cmd: Command, argv: string[]): CommandArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        config: { type: 'string', short: 'c' },
        mailbox: { type: 'string', short: 'm' },
        json: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const out: CommandArgs = { help: !!v.help, config: v.config, mailbox: v.mailbox, json: !!v.json, positionals: parsed.positionals };
  if (out.help) return out;
  if (cmd.needsConfig && !out.config) throw new UsageError('--config FILE is required');
  if (cmd.positionals === 'none' && out.positionals.length) throw new UsageError(`unexpected argument "${out.positionals[0]}"`);
  if (cmd.positionals === 'some' && !out.positionals.length) throw new UsageError('give at least one message file');
  return out;
}
