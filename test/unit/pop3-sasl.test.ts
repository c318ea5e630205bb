// SASL mechanisms and APOP against the published RFC test vectors, plus SCRAM's refusal paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSaslprep, prepareSaslString, scramMechanism } from '../../src/pop3/auth/scram.js';
import {
  cramMd5Mechanism,
  loginMechanism,
  oauthBearerMechanism,
  plainMechanism,
  saslName,
  xoauth2Mechanism,
} from '../../src/pop3/auth/simple-mechanisms.js';
import { apopDigest } from '../../src/pop3/auth/login.js';
import type { SaslStep } from '../../src/pop3/auth/mechanism.js';

// SASLprep is loaded on demand, as authenticate() does before a SCRAM login.
await loadSaslprep();

function response(step: SaslStep): string {
  assert.ok('response' in step, `expected a response, got cancel: ${'cancel' in step ? step.cancel.message : ''}`);
  return step.response.toString('utf8');
}

function cancelCode(step: SaslStep): string {
  assert.ok('cancel' in step, 'expected the exchange to be cancelled');
  return step.cancel.code;
}

test('SCRAM-SHA-1: RFC 5802 section 5 example', async () => {
  const m = scramMechanism('sha1', 'user', 'pencil', { clientNonce: 'fyko+d2lbbFgONRv9qkxdawL' });
  assert.equal(m.initialResponse()!.toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
  const final = response(await m.step(Buffer.from('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')));
  assert.equal(final, 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
  assert.ok(m.finish(), 'not complete before the server signature');
  assert.equal(response(await m.step(Buffer.from('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='))), '');
  assert.equal(m.finish(), null);
});

test('SCRAM-SHA-256: RFC 7677 section 3 example', async () => {
  const m = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
  assert.equal(m.initialResponse()!.toString(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const final = response(
    await m.step(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')),
  );
  assert.equal(final, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
  assert.equal(response(await m.step(Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='))), '');
  assert.equal(m.finish(), null);
});

test('SCRAM refuses a wrong server signature, a foreign nonce, absurd iteration counts and server errors', async () => {
  const first = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const bad = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
  response(await bad.step(Buffer.from(first)));
  assert.equal(cancelCode(await bad.step(Buffer.from('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='))), 'ESCRAM_SERVER_SIGNATURE');
  assert.equal(bad.finish()?.code, 'ESCRAM_SERVER_SIGNATURE');

  const noV = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
  response(await noV.step(Buffer.from(first)));
  assert.equal(cancelCode(await noV.step(Buffer.from('x=1'))), 'ESCRAM_SERVER_SIGNATURE');

  const err = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
  response(await err.step(Buffer.from(first)));
  assert.equal(cancelCode(await err.step(Buffer.from('e=invalid-proof'))), 'EAUTH');

  const nonce = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'abc' });
  assert.equal(cancelCode(await nonce.step(Buffer.from('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096'))), 'EPROTOCOL');
  const sameNonce = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'abc' });
  assert.equal(cancelCode(await sameNonce.step(Buffer.from('r=abc,s=QSXCR+Q6sek8bf92,i=4096'))), 'EPROTOCOL');
  const iter = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'abc' });
  assert.equal(cancelCode(await iter.step(Buffer.from('r=abcdef,s=QSXCR+Q6sek8bf92,i=999999999'))), 'EPROTOCOL');
  const ext = scramMechanism('sha256', 'user', 'pencil', { clientNonce: 'abc' });
  assert.equal(cancelCode(await ext.step(Buffer.from('m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096'))), 'EPROTOCOL');
});

test('SCRAM escapes "=" and "," in the user name; random nonces differ', () => {
  const a = scramMechanism('sha256', 'a=b,c', 'p').initialResponse()!.toString();
  assert.match(a, /^n,,n=a=3Db=2Cc,r=[A-Za-z0-9]{20,}$/);
  const b = scramMechanism('sha256', 'a=b,c', 'p').initialResponse()!.toString();
  assert.notEqual(a, b);
  assert.equal(saslName('x=,y'), 'x=3D=2Cy');
});

test('SASLprep: RFC 4013 section 3 examples, and SCRAM uses the prepared password', async () => {
  const prep = (s: string) => prepareSaslString(s, 'password', 'SCRAM-SHA-256');
  assert.equal(prep('I\u00ADX'), 'IX'); // 1: SOFT HYPHEN mapped to nothing
  assert.equal(prep('user'), 'user'); // 2: no transformation
  assert.equal(prep('USER'), 'USER'); // 3: case preserved, will not match #2
  assert.equal(prep('\u00AA'), 'a'); // 4: output is NFKC, input in ISO 8859-1
  assert.equal(prep('\u2168'), 'IX'); // 5: output is NFKC, will match #1
  assert.throws(() => prep('\u0007'), (e: Error & { code?: string }) => e.code === 'EINVALID' && /prohibits/.test(e.message)); // 6
  assert.throws(() => prep('\u0627\u0031'), (e: Error & { code?: string }) => e.code === 'EINVALID' && /right-to-left/.test(e.message)); // 7
  // Beyond NFKC: a non-ASCII space becomes U+0020 (NFKC alone would keep U+3000 as a space too, but drops no soft hyphen).
  assert.equal(prep('pass\u3000word'), 'pass word');
  assert.equal('I\u00ADX'.normalize('NFKC'), 'I\u00ADX', 'NFKC alone keeps the soft hyphen');
  // A code point unassigned in Unicode 3.2 (an emoji from Unicode 6) is allowed, as for a query.
  assert.equal(prep('pw\u{1F600}'), 'pw\u{1F600}');

  // SCRAM with "pen\u00ADcil" derives the same keys as "pencil": the RFC 7677 vector still holds.
  const m = scramMechanism('sha256', 'user', 'pen\u00ADcil', { clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
  const final = response(
    await m.step(Buffer.from('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')),
  );
  assert.match(final, /,p=dHzbZapWIk4jUhN\+Ute9ytag9zjfMHgsqmmiz7AndVQ=$/);
  // A prohibited password is refused before anything is sent, and the error does not contain it.
  assert.throws(
    () => scramMechanism('sha256', 'user', 'secret\u0007pw'),
    (e: Error & { code?: string }) => e.code === 'EINVALID' && !e.message.includes('secret') && /auth: plain/.test(e.message),
  );
});

test('CRAM-MD5: RFC 2195 example', () => {
  const m = cramMd5Mechanism('tim', 'tanstaaftanstaaf');
  assert.equal(m.initialResponse(), null);
  assert.equal(response(m.step(Buffer.from('<1896.697170952@postoffice.reston.mci.net>')) as SaslStep), 'tim b913a602c7eda7a495b4e6e7334d3890');
});

test('APOP: RFC 1939 example digest', () => {
  assert.equal(apopDigest('<1896.697170952@dbc.mtview.ca.us>', 'tanstaaf'), 'c4c9334bac560ecc979e58001b3e22fb');
});

test('PLAIN and LOGIN', () => {
  assert.equal(plainMechanism('u', 'p').initialResponse()!.toString(), '\0u\0p');
  const l = loginMechanism('u', 'p');
  assert.equal(l.initialResponse(), null);
  assert.equal(response(l.step(Buffer.from('Username:')) as SaslStep), 'u');
  assert.equal(response(l.step(Buffer.from('Password:')) as SaslStep), 'p');
});

test('XOAUTH2: initial response format; an error challenge is answered with an empty response', () => {
  const m = xoauth2Mechanism('me@example.com', 'ya29.token');
  assert.equal(m.initialResponse()!.toString(), 'user=me@example.com\x01auth=Bearer ya29.token\x01\x01');
  const json = '{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}';
  assert.equal(response(m.step(Buffer.from(json)) as SaslStep), '');
  assert.equal(m.failureDetail?.(), json);
});

test('OAUTHBEARER: RFC 7628 initial response; an error challenge is answered with 0x01', () => {
  const m = oauthBearerMechanism('me@example.com', 'tok', 'pop.example.com', 995);
  assert.equal(m.initialResponse()!.toString(), 'n,a=me@example.com,\x01host=pop.example.com\x01port=995\x01auth=Bearer tok\x01\x01');
  const json = '{"status":"invalid_token"}';
  const step = m.step(Buffer.from(json)) as SaslStep;
  assert.ok('response' in step);
  assert.deepEqual([...step.response], [0x01]);
  assert.equal(m.failureDetail?.(), json);
});
