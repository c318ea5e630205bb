// Fault: a POP3 server that accepts and then hangs (no greeting, no reply, or a reply trickled forever); deadlines fire and the daemon keeps polling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startLab, startDaemon, waitForOutput, type Lab } from '../support/lab.js';
import { faultConfig } from '../support/fault-lab.js';
import { within } from '../support/wait.js';

let lab: Lab;

before(async () => {
  lab = await startLab();
});
after(async () => {
  await lab?.stop();
});

interface Hanger {
  port: number;
  accepted: number;
  open: number;
  close(): Promise<void>;
}

/** A TCP listener that runs `onConn` per connection and counts connections that are still open. */
async function hangingServer(onConn: (s: net.Socket) => void): Promise<Hanger> {
  const socks = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const h = { port: 0, accepted: 0, open: 0 } as Hanger;
  const server = net.createServer((s) => {
    h.accepted++;
    socks.add(s);
    h.open = socks.size;
    s.on('error', () => {});
    s.on('close', () => {
      socks.delete(s);
      h.open = socks.size;
    });
    onConn(s);
    s.resume(); // read and discard what the client sends, so its FIN is seen
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  h.port = (server.address() as net.AddressInfo).port;
  h.close = async () => {
    for (const t of timers) clearInterval(t);
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  (h as Hanger & { timers: Set<NodeJS.Timeout> }).timers = timers;
  return h;
}

const TIMEOUTS = `    timeouts: { connect: 1s, greeting: 1s, command: 1s, session: 3s }
`;

async function runAgainst(port: number, name: string, expect: RegExp, hanger: Hanger): Promise<void> {
  const cfg = await lab.writeConfig(faultConfig(lab, { stateDir: `./state-${name}`, port, tls: 'none', mailboxExtra: TIMEOUTS }), `${name}.yaml`);
  const d = startDaemon(['run', '--config', cfg], { env: lab.env, cwd: lab.dir });
  try {
    // Three failed polls in a row, each ended by its deadline: the daemon neither hangs nor exits.
    const lines = await waitForOutput(d.output, /poll failed[^\n]*/, 30_000, 3);
    for (const l of lines) assert.match(l, expect);
    for (const l of lines) assert.match(l, /retry_in_s=\d+/);
    assert.equal(d.child.exitCode, null, 'daemon still running');
    assert.ok(hanger.accepted >= 3, `the server saw ${hanger.accepted} connections`);
    // Every timed-out session was closed by the client (at most the current one is open).
    assert.ok(hanger.open <= 1, `${hanger.open} connections left open (accepted ${hanger.accepted})`);
    d.child.kill('SIGTERM');
    const ex = await within(d.exited, 12_000);
    assert.equal(ex?.code, 0, `exit after SIGTERM:\n${d.output().slice(-2000)}`);
  } finally {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
  }
}

test('server accepts and never sends a greeting: greeting deadline fires, the daemon logs it and polls again', { timeout: 60_000 }, async () => {
  const h = await hangingServer(() => {});
  try {
    await runAgainst(h.port, 'silent', /code=ETIMEOUT.*greeting/, h);
  } finally {
    await h.close();
  }
});

test('server greets, then never answers a command: command deadline fires, next poll happens', { timeout: 60_000 }, async () => {
  const h = await hangingServer((s) => s.write('+OK hello\r\n'));
  try {
    await runAgainst(h.port, 'mute', /code=ETIMEOUT/, h);
  } finally {
    await h.close();
  }
});

test('server trickles a multi-line reply forever (a line every 200 ms, never the end): the whole-session deadline fires', { timeout: 60_000 }, async () => {
  const h = await hangingServer((s) => {
    s.write('+OK hello\r\n');
    s.once('data', () => {
      s.write('+OK capabilities follow\r\n');
      // Complete capability lines, each well within the command deadline, but never the terminating ".".
      const t = setInterval(() => s.writable && s.write('X-NEVER-ENDING\r\n'), 200);
      (h as Hanger & { timers: Set<NodeJS.Timeout> }).timers.add(t);
      s.on('close', () => clearInterval(t));
    });
  });
  try {
    await runAgainst(h.port, 'trickle', /code=ETIMEOUT error="session deadline passed"/, h);
  } finally {
    await h.close();
  }
});
