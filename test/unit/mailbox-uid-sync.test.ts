// Tests of mailbox/uid-sync.ts against an in-memory maildrop: which POP3 commands each sync sends, the UID map it returns, and what it saves in the state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pop3Error, type Pop3Client } from '../../src/pop3/index.js';
import { syncUids, type UidSyncOptions } from '../../src/mailbox/uid-sync.js';
import { syntheticUid } from '../../src/mailbox/synthetic-uid.js';
import { MailboxState } from '../../src/state/mailbox-state.js';
import { createLogger } from '../../src/log.js';

const logger = createLogger({ level: 'error', write: () => {}, timestamps: false });

interface Msg { uid: string; size: number }

/**
 * The maildrop as a Pop3Client shows it to syncUids, answering as Pop3Client does: `UIDL n` gives null on -ERR, the
 * full `UIDL` throws Pop3Error('ERR') and sets uidlRefused. Every command is logged as it would go on the wire.
 */
class FakeMaildrop {
  readonly sent: string[] = [];
  uidlRefused = false;
  constructor(
    public msgs: Msg[],
    private readonly o: { capa?: string[]; refuseUidl?: boolean; leaveOut?: number[] } = {},
  ) {}

  get capabilities(): Set<string> {
    return new Set(this.o.capa ?? ['TOP', 'UIDL', 'PIPELINING']);
  }

  get stat(): { count: number; size: number } {
    return { count: this.msgs.length, size: this.msgs.reduce((a, m) => a + m.size, 0) };
  }

  headersOf(n: number): Buffer {
    return Buffer.from(`Message-ID: <${this.msgs[n - 1]!.uid}@test>\r\nFrom: a@b\r\nSubject: ${n}\r\n\r\n`);
  }

  async uidl(msg?: number): Promise<Map<number, string> | string | null> {
    if (msg === undefined) {
      this.sent.push('UIDL');
      if (this.o.refuseUidl) {
        this.uidlRefused = true;
        throw new Pop3Error('ERR', 'UIDL: not supported');
      }
      const out = new Map<number, string>();
      this.msgs.forEach((m, i) => (this.o.leaveOut?.includes(i + 1) ? undefined : out.set(i + 1, m.uid)));
      return out;
    }
    this.sent.push(`UIDL ${msg}`);
    return this.o.refuseUidl ? null : (this.msgs[msg - 1]?.uid ?? null);
  }

  async uidlMany(msgs: number[]): Promise<Map<number, string | null>> {
    const out = new Map<number, string | null>();
    for (const m of msgs) out.set(m, (await this.uidl(m)) as string | null);
    return out;
  }

  async list(msg?: number): Promise<Map<number, number> | number | null> {
    if (msg !== undefined) {
      this.sent.push(`LIST ${msg}`);
      return this.msgs[msg - 1]?.size ?? null;
    }
    this.sent.push('LIST');
    return new Map(this.msgs.map((m, i) => [i + 1, m.size]));
  }

  async topEach(msgs: number[], lines: number, each: (msg: number, r: Buffer | Error) => void): Promise<void> {
    for (const m of msgs) {
      this.sent.push(`TOP ${m} ${lines}`);
      each(m, this.headersOf(m));
    }
  }

  get client(): Pop3Client {
    return this as unknown as Pop3Client;
  }
}

const mail = (...uids: string[]): Msg[] => uids.map((uid, i) => ({ uid, size: 100 + i }));

async function withState(fn: (state: MailboxState) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-uidsync-'));
  try {
    await fn((await MailboxState.load(dir, 'mb', logger)).state);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A state as left by a poll that saw `msgs`. */
function seen(state: MailboxState, box: FakeMaildrop): void {
  state.syncServer(box.msgs.map((m) => m.uid), box.stat);
}

async function sync(box: FakeMaildrop, state: MailboxState, o: Partial<UidSyncOptions> = {}) {
  box.sent.length = 0;
  const r = await syncUids(box.client, state, box.stat, { fast: true, hasUnfinished: false, logger, ...o });
  return { ...r, uids: [...r.uidByMsg].sort((a, b) => a[0] - b[0]).map(([, u]) => u), sent: [...box.sent] };
}

test('first sync: one full UIDL listing, saved in server order with the STAT', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c'));
    const r = await sync(box, state);
    assert.deepEqual([r.method, r.unchanged, r.uids, r.sent], ['full', false, ['a', 'b', 'c'], ['UIDL']]);
    assert.deepEqual(state.data.serverUids, ['a', 'b', 'c']);
    assert.deepEqual(state.data.stat, box.stat);
  });
});

test('nothing changed: the STAT short-circuit asks one UIDL n, or nothing when the login already asked it', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c'));
    seen(state, box);
    let r = await sync(box, state);
    assert.deepEqual([r.method, r.unchanged, r.uids, r.sent], ['short-circuit', true, ['a', 'b', 'c'], ['UIDL 3']]);
    r = await sync(box, state, { prefetched: { msg: 3, uid: 'c' } });
    assert.deepEqual([r.method, r.unchanged, r.sent], ['short-circuit', true, []]);
  });
});

test('unfinished work (a retry, a pending DELE) skips the short-circuit: the poll goes on with the same UIDs', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c'));
    seen(state, box);
    const r = await sync(box, state, { hasUnfinished: true });
    assert.deepEqual([r.method, r.unchanged, r.uids, r.sent], ['incremental', false, ['a', 'b', 'c'], ['UIDL 3']]);
  });
});

test('the last message replaced by one of the same size (same STAT): seen through the UID, not short-circuited', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c'));
    seen(state, box);
    box.msgs[2] = { uid: 'x', size: box.msgs[2]!.size };
    const r = await sync(box, state);
    assert.equal(r.unchanged, false);
    assert.deepEqual(r.uids, ['a', 'b', 'x']);
    assert.deepEqual(state.data.serverUids, ['a', 'b', 'x']);
  });
});

test('new mail appended: UIDL n for the last known position and the new ones only, no full listing', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c'));
    seen(state, box);
    box.msgs.push(...mail('d', 'e'));
    const r = await sync(box, state);
    assert.deepEqual([r.method, r.uids, r.sent], ['incremental', ['a', 'b', 'c', 'd', 'e'], ['UIDL 3', 'UIDL 4', 'UIDL 5']]);
    assert.deepEqual(state.data.serverUids, ['a', 'b', 'c', 'd', 'e']);
  });
});

test('oldest mail deleted by another client plus new mail: a binary search finds the survivors without a full listing', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c', 'd', 'e'));
    seen(state, box);
    box.msgs = [...box.msgs.slice(2), ...mail('f')];
    const r = await sync(box, state);
    assert.deepEqual([r.method, r.uids], ['incremental', ['c', 'd', 'e', 'f']]);
    assert.ok(!r.sent.includes('UIDL'), r.sent.join(','));
    assert.ok(r.sent.length <= 5, `a few UIDL n, not one per message: ${r.sent.join(',')}`);
  });
});

test('mail deleted from the middle: the survivors are not contiguous, so the full listing decides', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c', 'd'));
    seen(state, box);
    box.msgs = [box.msgs[0]!, box.msgs[2]!, box.msgs[3]!, ...mail('e')];
    const r = await sync(box, state);
    assert.deepEqual([r.method, r.uids], ['full', ['a', 'c', 'd', 'e']]);
    assert.equal(r.sent.at(-1), 'UIDL');
  });
});

test('a UID seen before turning up again at a new position is not trusted: full listing', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b'));
    seen(state, box);
    box.msgs.push({ uid: 'a', size: 7 });
    const r = await sync(box, state);
    assert.equal(r.method, 'full');
    assert.equal(r.sent.at(-1), 'UIDL');
  });
});

test('fast_uidl off: always the full listing', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b'));
    seen(state, box);
    box.msgs.push(...mail('c'));
    const r = await sync(box, state, { fast: false });
    assert.deepEqual([r.method, r.uids, r.sent], ['full', ['a', 'b', 'c'], ['UIDL']]);
  });
});

test('empty mailbox: nothing asked; unchanged only when it was empty before and nothing is left to do', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a'));
    seen(state, box);
    box.msgs = [];
    let r = await sync(box, state);
    assert.deepEqual([r.method, r.unchanged, r.sent], ['empty', false, []]);
    assert.deepEqual(state.data.serverUids, []);
    r = await sync(box, state);
    assert.deepEqual([r.method, r.unchanged], ['empty', true]);
    r = await sync(box, state, { hasUnfinished: true });
    assert.equal(r.unchanged, false);
  });
});

test('no UIDL in CAPA: synthetic ids from LIST and TOP n 0, the same at the next poll', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b'), { capa: ['TOP'] });
    const r = await sync(box, state);
    const expected = [syntheticUid(box.headersOf(1), 100), syntheticUid(box.headersOf(2), 101)];
    assert.deepEqual([r.method, r.uids, r.sent], ['synthetic', expected, ['LIST', 'TOP 1 0', 'TOP 2 0']]);
    assert.deepEqual(state.data.serverUids, expected);
    assert.deepEqual((await sync(box, state)).uids, expected);
  });
});

test('UIDL in CAPA but refused: UIDL n and the listing fail, synthetic ids are used, and UIDL is not asked again in the session', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b'), { refuseUidl: true });
    state.syncServer(['syn-old'], { count: 1, size: 1 });
    const r = await sync(box, state);
    assert.equal(r.method, 'synthetic');
    assert.deepEqual(r.sent.slice(0, 2), ['UIDL 1', 'UIDL']);
    const again = await sync(box, state);
    assert.equal(again.method, 'synthetic');
    assert.ok(!again.sent.some((c) => c.startsWith('UIDL')), again.sent.join(','));
  });
});

test('a UIDL listing that leaves out messages STAT counted: those alone get synthetic ids', async () => {
  await withState(async (state) => {
    const box = new FakeMaildrop(mail('a', 'b', 'c'), { leaveOut: [2] });
    const r = await sync(box, state);
    assert.deepEqual([r.method, r.uids], ['full', ['a', syntheticUid(box.headersOf(2), 101), 'c']]);
    assert.deepEqual(r.sent, ['UIDL', 'LIST 2', 'TOP 2 0']);
  });
});
