// Proves a streamed RETR holds only a bounded amount in memory while its consumer is slow: the socket is paused, so the rest of a big message stays with the server.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Pop3Client } from '../../src/pop3/index.js';
import { serveMailbox, startHostilePop3, type HostileServer } from '../support/hostile-pop3.js';
import { sleep } from '../support/wait.js';

const servers: HostileServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A 16 MB message of base64-like 78-octet lines, as a camera snapshot mail is on the wire. */
function bigMessage(): Buffer {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n';
  return Buffer.from('Subject: snapshot\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n' + line.repeat(Math.ceil((16 << 20) / line.length)));
}

test('a paused RETR stream stops reading the socket: bytes read stay bounded, then the message arrives whole', { timeout: 30_000 }, async () => {
  const big = bigMessage();
  const s = await startHostilePop3(async (c) => void (await serveMailbox(c, { messages: [big] })));
  servers.push(s);
  const c = await Pop3Client.connect({ host: '127.0.0.1', port: s.port, tls: 'none', timeouts: { connectMs: 2000, greetingMs: 2000, commandMs: 5000, sessionMs: 25_000 } });
  await c.login({ username: 'user', password: 'pass', allowInsecureAuth: true });
  const before = c.stats.bytesIn;
  const stream = await c.retrStream(1);
  // Nobody reads for a while: the server could send all 16 MB meanwhile.
  await sleep(400);
  const heldWhilePaused = c.stats.bytesIn - before;
  assert.ok(heldWhilePaused < 1 << 20, `read ${heldWhilePaused} bytes of a ${big.length}-byte message while the consumer was paused`);
  assert.ok(stream.readableLength <= 256 * 1024, `stream buffered ${stream.readableLength} bytes`);
  // Now consume it slowly; the message must still arrive exactly.
  const hash = createHash('sha256');
  let n = 0;
  let maxBuffered = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
    maxBuffered = Math.max(maxBuffered, stream.readableLength);
    if (n % (1 << 20) < (chunk as Buffer).length) await sleep(5);
  }
  assert.equal(n, big.length);
  assert.equal(hash.digest('hex'), createHash('sha256').update(big).digest('hex'));
  assert.ok(maxBuffered <= 256 * 1024, `stream buffered up to ${maxBuffered} bytes`);
  await c.quit();
});
