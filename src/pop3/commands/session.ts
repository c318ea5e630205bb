// Session commands: CAPA, NOOP, RSET, DELE (one or many, pipelined) and QUIT.
import { Capabilities } from '../capabilities.js';
import { Pop3Error, errorFromReply } from '../errors.js';
import type { SessionContext } from '../session-context.js';
import { checkMsg, settle } from './args.js';

const TX = ['TRANSACTION'] as const;

/** CAPA; null when the server does not support it (RFC 1939-only server). */
export async function capa(ctx: SessionContext): Promise<Capabilities | null> {
  ctx.requireState('CAPA', ['AUTHORIZATION', 'TRANSACTION']);
  const r = await ctx.conn.send({ name: 'CAPA', line: 'CAPA', multiline: true, barrier: true });
  if (r.status !== '+OK') return null;
  return Capabilities.parse(r.data ?? Buffer.alloc(0));
}

export async function noop(ctx: SessionContext): Promise<void> {
  ctx.requireState('NOOP', TX);
  const r = await ctx.conn.send({ name: 'NOOP', line: 'NOOP', multiline: false });
  if (r.status !== '+OK') throw errorFromReply('NOOP', r.text);
}

export async function rset(ctx: SessionContext): Promise<void> {
  ctx.requireState('RSET', TX);
  const r = await ctx.conn.send({ name: 'RSET', line: 'RSET', multiline: false });
  if (r.status !== '+OK') throw errorFromReply('RSET', r.text);
}

function deleSend(ctx: SessionContext, msg: number): Promise<void> {
  return ctx.conn.send({ name: 'DELE', line: `DELE ${msg}`, multiline: false }).then((r) => {
    if (r.status !== '+OK') throw errorFromReply('DELE', r.text);
  });
}

/** Mark a message deleted; the server removes it only when QUIT succeeds. */
export async function dele(ctx: SessionContext, msg: number): Promise<void> {
  ctx.requireState('DELE', TX);
  checkMsg('DELE', msg);
  return deleSend(ctx, msg);
}

/** DELE many, pipelined when allowed: null for success, the Pop3Error for a "-ERR". A dead connection rejects. */
export async function deleMany(ctx: SessionContext, msgs: readonly number[]): Promise<Map<number, Pop3Error | null>> {
  ctx.requireState('DELE', TX);
  for (const m of msgs) checkMsg('DELE', m);
  const pending = msgs.map((m) => settle(deleSend(ctx, m)));
  const out = new Map<number, Pop3Error | null>();
  for (let i = 0; i < msgs.length; i++) {
    const v = await pending[i]!;
    if (v instanceof Pop3Error && ctx.conn.fatalError) throw ctx.conn.fatalError;
    out.set(msgs[i]!, v instanceof Pop3Error ? v : null);
  }
  return out;
}

/** QUIT: in TRANSACTION this enters UPDATE, where the server commits deletions; "-ERR" means it did not. */
export async function quit(ctx: SessionContext, onAccepted: () => void = () => {}): Promise<void> {
  ctx.requireState('QUIT', ['AUTHORIZATION', 'TRANSACTION']);
  onAccepted();
  const r = await ctx.conn.quit({ name: 'QUIT', line: 'QUIT', multiline: false });
  if (r.status !== '+OK') throw errorFromReply('QUIT', r.text);
}
