// The time limits of one POP3 session in one object: the configured budgets, validated once, and the arithmetic between them (what is left of the session, how long a connect phase may take).
//
//  - session: absolute, from connect() on; bounds everything;
//  - connect: DNS, TCP and TLS together, and again for the STLS handshake; a phase never outlives the session;
//  - greeting: absolute, from transport ready until the greeting line is complete;
//  - command: while a command is outstanding, the longest wait for the next complete line (see connection.ts).
import { Pop3Error } from './errors.js';
import { DEFAULT_TIMEOUTS, positiveOption as positive } from './limits.js';

export interface TimeoutOptions {
  connectMs?: number | undefined;
  greetingMs?: number | undefined;
  commandMs?: number | undefined;
  sessionMs?: number | undefined;
}

function sessionExpired(): Pop3Error {
  return new Pop3Error('ETIMEOUT', 'session deadline passed');
}

/** One phase's budget, counted from when it started: how long it may take in all, and what is left of that. */
export class PhaseDeadline {
  constructor(
    /** The whole budget of the phase, for error texts. */
    readonly limitMs: number,
    private readonly endsAt: number,
    /** The session's end came before the phase's own budget: running out is the session deadline. */
    readonly cutBySession: boolean,
    private readonly clock: () => number,
  ) {}

  /** Milliseconds left, never negative. */
  remaining(): number {
    return Math.max(0, this.endsAt - this.clock());
  }

  get expired(): boolean {
    return this.remaining() === 0;
  }

  /** The error for running out: the session deadline when that is what ended the phase. */
  timeoutError(what: string): Pop3Error {
    return this.cutBySession ? sessionExpired() : new Pop3Error('ETIMEOUT', `${what} did not complete within ${this.limitMs} ms`);
  }
}

export class SessionDeadline {
  readonly connectMs: number;
  readonly greetingMs: number;
  readonly commandMs: number;
  readonly sessionMs: number;
  /** Epoch ms at which the whole session must be over. */
  readonly endsAt: number;

  /** Starts the session clock now; throws EINVALID for a budget that is not a positive number. */
  constructor(t: TimeoutOptions = {}, private readonly clock: () => number = Date.now) {
    this.connectMs = positive(t.connectMs, DEFAULT_TIMEOUTS.connectMs, 'timeouts.connectMs');
    this.greetingMs = positive(t.greetingMs, DEFAULT_TIMEOUTS.greetingMs, 'timeouts.greetingMs');
    this.commandMs = positive(t.commandMs, DEFAULT_TIMEOUTS.commandMs, 'timeouts.commandMs');
    this.sessionMs = positive(t.sessionMs, DEFAULT_TIMEOUTS.sessionMs, 'timeouts.sessionMs');
    this.endsAt = clock() + this.sessionMs;
  }

  /** Milliseconds left of the whole session, never negative. */
  sessionLeft(): number {
    return Math.max(0, this.endsAt - this.clock());
  }

  /** The error for a session that ran out of time. */
  timeoutError(): Pop3Error {
    return sessionExpired();
  }

  /** A connect phase (DNS + TCP + TLS, or the STLS handshake) starting now: connectMs, cut short by the session's end. */
  connectPhase(): PhaseDeadline {
    const now = this.clock();
    const left = Math.max(0, this.endsAt - now);
    const limitMs = Math.min(this.connectMs, left);
    return new PhaseDeadline(limitMs, now + limitMs, left < this.connectMs, this.clock);
  }
}
