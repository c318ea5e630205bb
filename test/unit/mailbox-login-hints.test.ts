// Provider login hints: a Gmail or Microsoft login failure names the fix; other servers and errors get none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loginHint } from '../../src/mailbox/login-hints.js';
import { Pop3Error } from '../../src/pop3/index.js';

test('Gmail: a refused password points to app passwords, POP turned off to the setting; Microsoft to OAuth', () => {
  const refused = new Pop3Error('EAUTH', 'PASS: -ERR [AUTH] Username and password not accepted.', { respCode: 'AUTH', serverText: '[AUTH] Username and password not accepted.' });
  assert.match(loginHint('pop.gmail.com', refused, true)!, /app password.*2-Step Verification > App passwords/);
  assert.equal(loginHint('pop.gmail.com', refused, false), undefined, 'an OAuth login failure is not about app passwords');
  const popOff = new Pop3Error('ESYS_PERM', 'PASS: -ERR [SYS/PERM] Your account is not enabled for POP access.', { respCode: 'SYS/PERM', serverText: '[SYS/PERM] Your account is not enabled for POP access.' });
  assert.match(loginHint('pop.gmail.com', popOff, true)!, /Enable POP/);
  assert.match(loginHint('outlook.office365.com', refused, true)!, /oauth/);
  assert.equal(loginHint('mail.example.net', refused, true), undefined);
  assert.equal(loginHint('pop.gmail.com', new Error('x'), true), undefined);
});
