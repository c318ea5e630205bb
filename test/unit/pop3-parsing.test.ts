// Pure helpers of the POP3 library: response codes, capabilities, listings, greeting timestamps, TOP emulation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Capabilities } from '../../src/pop3/capabilities.js';
import { errorFromReply, parseRespCode, Pop3Error } from '../../src/pop3/errors.js';
import { parseListing, parseStat, parseUidListing } from '../../src/pop3/commands/maildrop.js';
import { TopEmulator } from '../../src/pop3/commands/fetch.js';
import { parseApopTimestamp } from '../../src/pop3/client.js';
import { normalizeFingerprint } from '../../src/pop3/tls-policy.js';
import { registerSecret } from '../../src/log.js';

test('response codes: extraction and mapping, hierarchical codes, unknown codes', () => {
  assert.equal(parseRespCode('[IN-USE] busy'), 'IN-USE');
  assert.equal(parseRespCode('[sys/temp] x'), 'SYS/TEMP');
  assert.equal(parseRespCode('no code [AUTH]'), undefined);
  assert.equal(errorFromReply('PASS', '[SYS/PERM] gone').code, 'ESYS_PERM');
  assert.equal(errorFromReply('PASS', '[SYS/TEMP/DISK] x').code, 'ESYS_TEMP');
  assert.equal(errorFromReply('STAT', '[UNKNOWN-CODE] x').code, 'ERR');
  assert.equal(errorFromReply('STAT', '[UNKNOWN-CODE] x').respCode, 'UNKNOWN-CODE');
  assert.equal(errorFromReply('PASS', 'nope', 'EAUTH').code, 'EAUTH');
  assert.equal(errorFromReply('STAT', 'nope').retry, 'next-poll');
});

test('registered secrets are redacted from error text', () => {
  registerSecret('s3cr3t-value');
  const e = errorFromReply('PASS', 'bad password s3cr3t-value', 'EAUTH');
  assert.ok(!e.message.includes('s3cr3t-value'));
  assert.ok(!e.serverText!.includes('s3cr3t-value'));
  const e2 = new Pop3Error('ERR', `b64 ${Buffer.from('s3cr3t-value').toString('base64')}`);
  assert.ok(!e2.message.includes(Buffer.from('s3cr3t-value').toString('base64').replace(/=+$/, '')));
});

test('capabilities: case-insensitive names, arguments, raw lines', () => {
  const c = Capabilities.parse(Buffer.from('TOP\r\nuidl\r\nSASL PLAIN SCRAM-SHA-256\r\nLOGIN-DELAY 900\r\nIMPLEMENTATION Dovecot\r\n'));
  assert.ok(c.has('top') && c.has('UIDL') && !c.has('STLS'));
  assert.deepEqual(c.get('SASL'), ['PLAIN', 'SCRAM-SHA-256']);
  assert.deepEqual(c.saslMechanisms, ['PLAIN', 'SCRAM-SHA-256']);
  assert.deepEqual(c.get('login-delay'), ['900']);
  assert.deepEqual(c.get('TOP'), []);
  assert.equal(c.get('STLS'), undefined);
  assert.equal(c.lines.length, 5);
});

test('listings: STAT, LIST, UIDL parse; malformed ones are EPROTOCOL', () => {
  assert.deepEqual(parseStat('2 320'), { count: 2, size: 320 });
  assert.deepEqual(parseStat('0 0 extra words'), { count: 0, size: 0 });
  assert.throws(() => parseStat('two 320'), { code: 'EPROTOCOL' });
  assert.deepEqual([...parseListing(Buffer.from('1 120\r\n2 200\r\n'))], [[1, 120], [2, 200]]);
  assert.deepEqual([...parseListing(Buffer.alloc(0))], []);
  assert.throws(() => parseListing(Buffer.from('1 big\r\n')), { code: 'EPROTOCOL' });
  assert.deepEqual([...parseUidListing(Buffer.from('1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n'))], [
    [1, 'whqtswO00WBw418f9t5JxYwZ'],
    [2, 'QhdPYR:00WBw1Ph7x7'],
  ]);
  assert.throws(() => parseUidListing(Buffer.from('x y\r\n')), { code: 'EPROTOCOL' });
});

test('APOP timestamp from the greeting', () => {
  assert.equal(parseApopTimestamp('POP3 server ready <1896.697170952@dbc.mtview.ca.us>'), '<1896.697170952@dbc.mtview.ca.us>');
  assert.equal(parseApopTimestamp('Dovecot ready.'), null);
  assert.equal(parseApopTimestamp('ready <not a stamp>'), null);
});

test('fingerprints normalise colons and case', () => {
  assert.equal(normalizeFingerprint('AB:cd:EF'), 'abcdef');
  assert.equal(normalizeFingerprint('ab cd'), 'abcd');
});

test('TopEmulator keeps what TOP would return, however the data is split', () => {
  const msg = Buffer.from('A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n');
  for (const lines of [0, 1, 2, 5]) {
    const want = lines === 0 ? 'A: 1\r\nB: 2\r\n\r\n' : 'A: 1\r\nB: 2\r\n\r\n' + ['l1\r\n', 'l2\r\n', 'l3\r\n'].slice(0, lines).join('');
    for (let cut = 0; cut <= msg.length; cut++) {
      const e = new TopEmulator(lines, 1000);
      e.push(msg.subarray(0, cut));
      e.push(msg.subarray(cut));
      assert.equal(e.result().toString(), want, `lines=${lines} cut=${cut}`);
      assert.equal(e.overflow, false);
    }
  }
  const small = new TopEmulator(0, 5);
  small.push(msg);
  assert.equal(small.overflow, true);
});
