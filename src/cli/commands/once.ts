// `pop2mqtt once`: poll every mailbox once, wait for the broker's acknowledgements, and exit with a status.
import type { CommandArgs } from '../command-args.js';
import { Agent } from '../../agent.js';
import { createLogger, effectiveLogLevel } from '../../log.js';
import { loadOrReport } from './load.js';

const DRAIN_MS = 15_000;

export async function onceCommand(args: CommandArgs): Promise<number> {
  const loaded = await loadOrReport(args.config!, 'once');
  if (!loaded) return 2;
  const logger = createLogger({ level: effectiveLogLevel(loaded.config.log_level), format: loaded.config.log_format });
  const agent = new Agent(loaded, { logger });
  let code = 0;
  try {
    // The poll starts while the broker connection comes up; its alerts wait in the outbox until it is there.
    await agent.start({ schedule: false, waitForBroker: false });
    const summaries = await agent.pollNow(args.mailbox, 'once');
    for (const s of summaries) {
      if (!s.ok) {
        code = 1;
        process.stderr.write(`pop2mqtt once: mailbox ${s.mailbox} failed: ${s.code ? `[${s.code}] ` : ''}${s.error}\n`);
      }
    }
    const left = await agent.drainOutbox(DRAIN_MS);
    if (left > 0) {
      code = 1;
      process.stderr.write(`pop2mqtt once: ${left} alert publication(s) not acknowledged by the broker; kept in the outbox for the next run\n`);
    }
  } finally {
    await agent.stop();
  }
  return code;
}
