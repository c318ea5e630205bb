// The TLS secure context is built once per (minimum version, CA) and reused, so repeated polls do not grow native memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secureContextFor } from '../../src/pop3/transport.js';

const params = (ca?: string, minTlsVersion?: 'TLSv1.2' | 'TLSv1.3') => ({ host: 'localhost', ca, minTlsVersion });

test('the same CA and minimum version share one secure context; others get their own', () => {
  const a = secureContextFor(params());
  assert.equal(secureContextFor(params()), a);
  const b = secureContextFor(params(undefined, 'TLSv1.3'));
  assert.notEqual(b, a);
  assert.equal(secureContextFor(params(undefined, 'TLSv1.3')), b);
});
