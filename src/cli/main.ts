// The `pop2mqtt` command: dispatches subcommands and turns their outcome into an exit code.
import { VERSION } from '../version.js';
import { COMMANDS, mainHelp, parseCommandArgs, UsageError } from './args.js';
import { redact } from '../log.js';
import { applyHeapPolicy } from '../heap-policy.js';
import { deferOptimizingCompilers } from '../compiler-tiers.js';

// Before anything sizable is allocated: the heap sizing of a small-device daemon (see heap-policy.ts).
applyHeapPolicy();
// Optimizing compilers only once there is mail to work on (see compiler-tiers.ts).
deferOptimizingCompilers();

export async function main(argv: string[]): Promise<number> {
  // The container image's entrypoint: prepares /data (add-on config, privileges), then runs a command as usual.
  if (argv[0] === 'container') argv = await (await import('./commands/container.js')).containerArgv(argv.slice(1));
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`pop2mqtt ${VERSION}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`pop2mqtt: unknown command "${name}"\n\n${mainHelp()}`);
    return 2;
  }
  let args;
  try {
    args = parseCommandArgs(cmd, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pop2mqtt ${name}: ${err.message}\n\n${cmd.help}`);
      return 2;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(cmd.help);
    return 0;
  }
  return cmd.run(args);
}

// `pop2mqtt schema | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

// When the event loop has nothing left to do, every write and acknowledgement has happened: exit now rather than
// after Node's teardown of the environment and the heap (20-50 ms of a `once`, see docs/bench.md).
process.once('beforeExit', () => process.exit());

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const msg = err instanceof Error ? (process.env.POP2MQTT_DEBUG ? err.stack ?? err.message : err.message) : String(err);
    process.stderr.write(`pop2mqtt: ${redact(msg)}\n`);
    process.exitCode = 2;
  },
);
