// Mechanism choice and the no-cleartext-secret policy, as a table of transports, offers and requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateMechanisms, chooseMechanism, type MechanismRequest } from '../../src/pop3/auth/policy.js';
import { Capabilities } from '../../src/pop3/capabilities.js';
import { Pop3Error } from '../../src/pop3/errors.js';

const ALL = new Capabilities(['USER', 'SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 XOAUTH2 OAUTHBEARER']);

function req(p: Partial<MechanismRequest>): MechanismRequest {
  return {
    requested: 'auto',
    secure: true,
    capabilities: ALL,
    apopTimestamp: '<1.2@h>',
    allowInsecureAuth: false,
    hasPassword: true,
    hasToken: false,
    ...p,
  };
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof Pop3Error);
    return e.code;
  }
  return 'no error';
}

/** Offers (CAPA lines; every one also has an APOP timestamp) and the mechanism `auto` must pick, per transport. */
const AUTO_ORDER: Record<'tls' | 'cleartext (opted in)', Array<[string[], string]>> = {
  // Inside TLS: PLAIN first (cheapest), then strongest first.
  tls: [
    [['SASL SCRAM-SHA-1 SCRAM-SHA-256 CRAM-MD5 PLAIN', 'USER'], 'plain'],
    [['SASL SCRAM-SHA-1 SCRAM-SHA-256 CRAM-MD5 LOGIN', 'USER'], 'scram-sha-256'],
    [['SASL SCRAM-SHA-1 CRAM-MD5 LOGIN', 'USER'], 'scram-sha-1'],
    [['SASL CRAM-MD5 LOGIN', 'USER'], 'cram-md5'],
    [['SASL PLAIN LOGIN', 'USER'], 'plain'],
    [['SASL LOGIN', 'USER'], 'login'],
    [['USER'], 'user'],
    [['TOP'], 'apop'],
  ],
  // Without TLS (allow_insecure_auth): strongest first.
  'cleartext (opted in)': [
    [['SASL SCRAM-SHA-1 SCRAM-SHA-256 CRAM-MD5 PLAIN', 'USER'], 'scram-sha-256'],
    [['SASL SCRAM-SHA-1 CRAM-MD5 PLAIN', 'USER'], 'scram-sha-1'],
    [['SASL CRAM-MD5 PLAIN LOGIN', 'USER'], 'cram-md5'],
    [['SASL PLAIN LOGIN', 'USER'], 'plain'],
    [['SASL LOGIN', 'USER'], 'login'],
    [['USER'], 'user'],
    [['TOP'], 'apop'],
  ],
};

test('auto order: inside TLS PLAIN, then SCRAM-SHA-256 > SCRAM-SHA-1 > CRAM-MD5 > LOGIN > USER > APOP; without TLS strongest first', () => {
  for (const [transport, offers] of Object.entries(AUTO_ORDER)) {
    const secure = transport === 'tls';
    for (const [lines, want] of offers) {
      const got = chooseMechanism(req({ secure, allowInsecureAuth: !secure, capabilities: new Capabilities(lines), apopTimestamp: '<t@h>' }));
      assert.equal(got, want, `${transport}: ${lines.join('|')}`);
    }
  }
});

test('cleartext transport: only SCRAM without opt-in; everything with opt-in', () => {
  assert.equal(chooseMechanism(req({ secure: false })), 'scram-sha-256');
  const weakOnly = new Capabilities(['USER', 'SASL PLAIN CRAM-MD5']);
  assert.equal(code(() => chooseMechanism(req({ secure: false, capabilities: weakOnly }))), 'EINSECURE');
  assert.equal(chooseMechanism(req({ secure: false, capabilities: weakOnly, allowInsecureAuth: true })), 'cram-md5');
  for (const m of ['user', 'apop', 'plain', 'login', 'cram-md5'] as const) {
    assert.equal(code(() => chooseMechanism(req({ secure: false, requested: m }))), 'EINSECURE', m);
    assert.equal(chooseMechanism(req({ secure: false, requested: m, allowInsecureAuth: true })), m);
    assert.equal(chooseMechanism(req({ secure: true, requested: m })), m);
  }
  for (const m of ['xoauth2', 'oauthbearer'] as const) {
    assert.equal(code(() => chooseMechanism(req({ secure: false, requested: m, hasToken: true }))), 'EINSECURE', m);
  }
  assert.equal(chooseMechanism(req({ secure: false, requested: 'scram-sha-1' })), 'scram-sha-1');
});

test('tokens: OAUTHBEARER preferred, XOAUTH2 next; token mechanisms need a token and password ones a password', () => {
  assert.equal(chooseMechanism(req({ hasPassword: false, hasToken: true })), 'oauthbearer');
  assert.equal(
    chooseMechanism(req({ hasPassword: false, hasToken: true, capabilities: new Capabilities(['SASL XOAUTH2 PLAIN']) })),
    'xoauth2',
  );
  assert.equal(code(() => chooseMechanism(req({ hasPassword: false, hasToken: true, capabilities: new Capabilities(['USER']) }))), 'ENO_MECHANISM');
  assert.equal(code(() => chooseMechanism(req({ requested: 'xoauth2' }))), 'ENO_MECHANISM');
  assert.equal(code(() => chooseMechanism(req({ requested: 'plain', hasPassword: false, hasToken: true }))), 'ENO_MECHANISM');
  assert.equal(code(() => chooseMechanism(req({ hasPassword: false, hasToken: false }))), 'ENO_MECHANISM');
});

test('offers: SASL mechanisms must be advertised; APOP needs a greeting timestamp; no CAPA means USER (and APOP)', () => {
  const onlyUser = new Capabilities(['USER', 'TOP']);
  assert.equal(code(() => chooseMechanism(req({ requested: 'scram-sha-256', capabilities: onlyUser }))), 'ENO_MECHANISM');
  assert.equal(code(() => chooseMechanism(req({ requested: 'apop', apopTimestamp: null }))), 'ENO_MECHANISM');
  assert.equal(chooseMechanism(req({ capabilities: null, apopTimestamp: null })), 'user');
  assert.equal(chooseMechanism(req({ capabilities: null, requested: 'plain' })), 'plain', 'explicit SASL is tried when CAPA is unknown');
  assert.equal(chooseMechanism(req({ capabilities: new Capabilities(['SASL GSSAPI']), apopTimestamp: '<x@y>' })), 'apop');
  assert.equal(code(() => chooseMechanism(req({ capabilities: new Capabilities(['SASL GSSAPI']), apopTimestamp: null }))), 'ENO_MECHANISM');
});

test('candidates: every offered and permitted mechanism in order; those a server refused before go last; never a cleartext one without allow_insecure_auth', () => {
  assert.deepEqual(candidateMechanisms(req({})), ['plain', 'scram-sha-256', 'scram-sha-1', 'cram-md5', 'login', 'user', 'apop']);
  assert.deepEqual(candidateMechanisms(req({ avoid: ['plain', 'scram-sha-256'] })), ['scram-sha-1', 'cram-md5', 'login', 'user', 'apop', 'plain', 'scram-sha-256']);
  assert.deepEqual(candidateMechanisms(req({ secure: false })), ['scram-sha-256', 'scram-sha-1']);
  assert.deepEqual(candidateMechanisms(req({ secure: false, avoid: ['scram-sha-256'] })), ['scram-sha-1', 'scram-sha-256']);
  assert.deepEqual(candidateMechanisms(req({ requested: 'cram-md5', avoid: ['cram-md5'] })), ['cram-md5'], 'an explicit choice is the only candidate');
});

test('error texts name the config keys (tls, auth, allow_insecure_auth, oauth), not option names', () => {
  const msg = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  const insecure = msg(() => chooseMechanism(req({ secure: false, requested: 'user' })));
  assert.match(insecure, /^refusing USER on an unencrypted connection: it sends the secret in cleartext; use tls: implicit or starttls, or set allow_insecure_auth: true$/);
  assert.match(msg(() => chooseMechanism(req({ secure: false, requested: 'apop' }))), /it is a weak mechanism.*allow_insecure_auth: true/);
  assert.match(msg(() => chooseMechanism(req({ requested: 'xoauth2' }))), /^auth: xoauth2 needs an OAuth access token/);
  for (const m of [insecure, msg(() => chooseMechanism(req({ requested: 'xoauth2' }))), msg(() => chooseMechanism(req({ hasPassword: false })))]) {
    assert.doesNotMatch(m, /allowInsecureAuth|accessToken|it is sends/);
  }
});
