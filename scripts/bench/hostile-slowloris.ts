// Issue 13 point 4: how long a slow-loris POP3 server (each line inside the command deadline) holds one RETR, with the default deadlines.
// Usage: node --import tsx scripts/bench/hostile-slowloris.ts [--rate 20] [--line 10]
//
// A scripted peer (test/support/hostile-pop3.ts) answers RETR with "+OK" and then one `--line`-byte line at a time,
// `--rate` bytes a second overall, for ever. The client runs with the default timeouts (command 30 s, session 10 min,
// minimum reply rate); the script prints the error that ended the RETR and after how long.
import { parseArgs } from 'node:util';
import { Pop3Client, Pop3Error } from '../../src/pop3/index.js';
import { serveMailbox, startHostilePop3 } from '../../test/support/hostile-pop3.js';
import { sleep } from '../../test/support/wait.js';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '20' }, line: { type: 'string', default: '10' } } });
const rate = Number(values.rate);
const lineBytes = Math.max(3, Number(values.line));
const server = await startHostilePop3(async (c) => {
  await serveMailbox(c, {
    handle: async (cc, verb) => {
      if (verb !== 'RETR') return false;
      cc.write('+OK\r\n');
      for (let i = 0; cc.isOpen; i++) {
        cc.write(`${'s'.repeat(lineBytes - 2)}\r\n`);
        await sleep((1000 * lineBytes) / rate);
      }
      return true;
    },
  });
});
const client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, tls: 'none' });
await client.login({ username: 'user', password: 'pass', allowInsecureAuth: true });
const t0 = Date.now();
let outcome: string;
try {
  await client.retr(1);
  outcome = 'completed';
} catch (e) {
  outcome = e instanceof Pop3Error ? `${e.code}: ${e.message}` : String(e);
}
process.stdout.write(`hostile-slowloris: RETR trickled at ${rate} B/s in ${lineBytes}-byte lines, default timeouts\n` +
  `ended after ${((Date.now() - t0) / 1000).toFixed(1)} s, ${client.stats.bytesIn} bytes in: ${outcome}\n`);
client.destroy();
await server.close();
