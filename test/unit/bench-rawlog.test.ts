// Parsing Dovecot rawlogs: commands paired with replies (single- and multi-line), bytes per command shape, and round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandShape, parseSession } from '../../scripts/bench/rawlog.js';

const lines = (xs: Array<[number, string]>) => xs.map(([t, l]) => `${t.toFixed(6)} ${l}\r\n`).join('');

test('command shapes tell full UIDL/LIST from per-message forms and TOP n 0 from previews', () => {
  assert.equal(commandShape('UIDL'), 'UIDL');
  assert.equal(commandShape('UIDL 17'), 'UIDL n');
  assert.equal(commandShape('list 3'), 'LIST n');
  assert.equal(commandShape('TOP 4 0'), 'TOP n 0');
  assert.equal(commandShape('TOP 4 20'), 'TOP n k');
  assert.equal(commandShape('TOP 4 99999999'), 'TOP n k');
  assert.equal(commandShape('RETR 9'), 'RETR n');
  assert.equal(commandShape('QUIT'), 'QUIT');
});

test('a pipelined batch is one round trip; a command sent after the last reply is another', () => {
  const inText = lines([
    [10.0001, 'STAT'],
    [10.0005, 'UIDL 2'],
    [10.001, 'TOP 1 0'],
    [10.001, 'TOP 2 0'],
    [10.003, 'QUIT'],
  ]);
  const outText = lines([
    [10.0, '+OK Logged in.'],
    [10.0002, '+OK 2 300'],
    [10.0006, '+OK 2 0000000b'],
    [10.0011, '+OK'],
    [10.0011, 'Subject: a'],
    [10.0011, ''],
    [10.0011, '.'],
    [10.0012, '+OK'],
    [10.0012, '..dot-stuffed: x'],
    [10.0012, ''],
    [10.0012, '.'],
    [10.0031, '+OK Logging out.'],
  ]);
  const s = parseSession('x', inText, outText);
  assert.deepEqual(s.counts, { STAT: 1, 'UIDL n': 1, 'TOP n 0': 2, QUIT: 1 });
  assert.deepEqual(s.exchanges.map((e) => e.newRoundTrip), [true, true, true, false, true]);
  assert.equal(s.roundTrips, 4);
  assert.equal(s.bytesByShape['TOP n 0'], (5 + 12 + 2 + 3) + (5 + 18 + 2 + 3));
  assert.equal(s.bytesByShape.STAT, 11);
  assert.equal(s.outBytes, 16 + 11 + 16 + 22 + 28 + 18);
  assert.equal(s.inBytes, 6 + 8 + 9 + 9 + 6);
  assert.equal(s.loginReplyBytes, 16);
});

test('-ERR to a multi-line command is one line; a reply cut by a closed connection ends the pairing', () => {
  const inText = lines([[1.1, 'TOP 9 0'], [1.2, 'RETR 1'], [1.3, 'UIDL']]);
  const outText = lines([[1.0, '+OK Logged in.'], [1.15, '-ERR There is no message 9.'], [1.25, '+OK'], [1.25, 'partial']]);
  const s = parseSession('y', inText, outText);
  assert.equal(s.exchanges.length, 2);
  assert.equal(s.exchanges[0]!.ok, false);
  assert.equal(s.exchanges[0]!.replyBytes, 29);
  assert.equal(s.exchanges[1]!.replyBytes, 5 + 9);
});
