// STLS (RFC 2595): ask for TLS on a cleartext session and upgrade the connection in place; never continue in cleartext when that fails.
import type * as tls from 'node:tls';
import type { Capabilities } from '../capabilities.js';
import { Pop3Error } from '../errors.js';
import type { SessionContext } from '../session-context.js';
import { upgradeTransport, type TlsPhase } from '../transport.js';
import { capa } from './session.js';

export interface StlsOptions extends TlsPhase {
  /**
   * Skip the cleartext CAPA: a remembered session from an earlier STLS session with this server proves STLS works
   * there. A refusal still ends the session; nothing ever continues in cleartext.
   */
  skipCapa: boolean;
}

/**
 * CAPA (unless skipped) and STLS, then the handshake on the same socket. Resolves with what CAPA said in cleartext
 * (null when skipped or unsupported; for diagnostics only) and the TLS socket the connection now reads from. Any
 * failure ends the connection: ESTLS_UNAVAILABLE when STLS is not offered or refused, ESTLS_INJECTION for bytes
 * between "+OK" and the handshake, the handshake's error otherwise (or the session's, when that ended it).
 */
export async function stls(ctx: SessionContext, o: StlsOptions): Promise<{ before: Capabilities | null; socket: tls.TLSSocket }> {
  const { skipCapa, ...phase } = o;
  const conn = ctx.conn;
  let before: Capabilities | null = null;
  if (!skipCapa) {
    before = await capa(ctx);
    if (!before?.has('STLS')) {
      const err = new Pop3Error('ESTLS_UNAVAILABLE', 'server does not offer STLS; refusing to continue in cleartext');
      conn.fail(err);
      throw err;
    }
  }
  const r = await conn.send({ name: 'STLS', line: 'STLS', multiline: false, barrier: true, exclusive: true });
  if (r.status !== '+OK') {
    const err = new Pop3Error('ESTLS_UNAVAILABLE', `STLS refused: -ERR ${r.text}`, { serverText: r.text });
    conn.fail(err);
    throw err;
  }
  // The reader fails the connection if anything followed "+OK" in the same read (ESTLS_INJECTION).
  if (conn.fatalError) throw conn.fatalError;
  const plain = conn.detachForUpgrade();
  let socket: tls.TLSSocket;
  try {
    socket = await upgradeTransport(plain, phase);
  } catch (e) {
    // A session deadline or abort during the handshake destroys the socket under it: report that cause.
    const cause = conn.fatalError ?? (e as Pop3Error);
    conn.fail(cause);
    throw cause;
  }
  conn.attachUpgraded(socket);
  return { before, socket };
}
