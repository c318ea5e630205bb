// Many mailboxes on one agent: a fixed start offset per mailbox (polls spread over the schedule's interval) and a shared cap on polls in flight.

/**
 * The delay between a mailbox's cron tick and its poll: the mailbox's place in the spread, `phase` in [0, 1), mapped
 * into [0, min(gapMs, spreadMs)), where gapMs is the time to the mailbox's next tick.
 *
 * Why a fixed offset per mailbox rather than random jitter: it is the same at every tick, so each mailbox keeps a
 * regular period and only its phase moves; mail arrives at random times, so a constant phase shift changes neither
 * the mean nor the worst-case alert latency. It is reproducible (the same mailbox polls at the same second after a
 * restart, which keeps server logs readable), and it is always shorter than the gap to the next tick, so a mailbox
 * never skips or doubles a poll.
 */
export function pollOffsetMs(phase: number, gapMs: number, spreadMs: number): number {
  const window = Math.min(gapMs, spreadMs);
  if (!(window > 0) || !(phase >= 0 && phase < 1)) return 0;
  return Math.floor(phase * window);
}

/**
 * The phase of the n-th mailbox (0-based, config order): n times the golden ratio, modulo 1. Any first k mailboxes
 * are spread almost evenly (no two closer than about 1/(2.6 k) of the window, no gap wider than about 2.6/k: 100
 * mailboxes over 30 s start at most 4 in any second), and adding a mailbox at the end of the list moves none of
 * the others. A hash of the id would also be stable, but clusters like any random draw (10 of 100 in one second).
 */
export function spreadPhase(n: number): number {
  const GOLDEN = (Math.sqrt(5) - 1) / 2;
  const x = (n * GOLDEN) % 1;
  return x < 0 ? x + 1 : x;
}

/**
 * A counting semaphore shared by the mailbox runners of one agent (max_concurrent_polls): at most `limit` POP3
 * sessions at once, whoever asked (schedule, MQTT request, `once`); the others wait in order of arrival.
 */
export class PollSlots {
  private inUse = 0;
  private readonly queue: Array<{ grant: () => void }> = [];

  constructor(private max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`poll slot limit must be a positive integer, got ${max}`);
  }

  get limit(): number {
    return this.max;
  }

  /** Polls holding a slot now. */
  get active(): number {
    return this.inUse;
  }

  /** Polls waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** A new limit (config reload): more room admits waiting polls now; less takes effect as polls finish. */
  setLimit(max: number): void {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`poll slot limit must be a positive integer, got ${max}`);
    this.max = max;
    this.drain();
  }

  /**
   * Wait for a slot; resolves with its release function (idempotent). Rejects, leaving the queue, when the signal
   * aborts first.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.inUse++;
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.inUse--;
            this.drain();
          });
        },
      };
      const onAbort = () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) this.queue.splice(i, 1);
        reject(abortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
      this.drain();
    });
  }

  private drain(): void {
    while (this.inUse < this.max && this.queue.length) this.queue.shift()!.grant();
  }
}

function abortError(): Error {
  const e = new Error('stopped while waiting for a poll slot (max_concurrent_polls)');
  e.name = 'AbortError';
  return e;
}
