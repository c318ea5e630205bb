// `pop2mqtt run`: the daemon, until SIGINT/SIGTERM; SIGHUP reloads the config.
import type { CommandArgs } from '../command-args.js';
import { Agent } from '../../agent.js';
import { createLogger, effectiveLogLevel } from '../../log.js';
import { loadOrReport } from './load.js';

const STOP_DEADLINE_MS = 10_000;

export async function runCommand(args: CommandArgs): Promise<number> {
  const loaded = await loadOrReport(args.config!, 'run');
  if (!loaded) return 2;
  const logger = createLogger({ level: effectiveLogLevel(loaded.config.log_level), format: loaded.config.log_format });
  const agent = new Agent(loaded, { logger });
  await agent.start({ schedule: true });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info(`${sig} received: stopping`);
      const hard = setTimeout(() => {
        logger.error('stop took too long; exiting');
        process.exit(1);
      }, STOP_DEADLINE_MS);
      hard.unref();
      agent.stop().then(() => resolve(0), () => resolve(1));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => {
      agent.reload().catch((err: Error) => logger.error('reload failed; keeping the running config', { error: err }));
    });
  });
}
