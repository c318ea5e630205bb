// The TLS secure context is built once per (hello, minimum version, CA) and memory, and reused, so repeated polls do not grow native memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secureContextFor } from '../../src/pop3/client-hello.js';
import { Pop3Memory } from '../../src/pop3/memory.js';

const params = (ca?: string, minTlsVersion?: 'TLSv1.2' | 'TLSv1.3') => ({ host: 'localhost', ca, minTlsVersion });

test('the same CA and minimum version share one secure context; others get their own', () => {
  const memory = new Pop3Memory();
  const a = secureContextFor(params(), memory);
  assert.equal(secureContextFor(params(), memory), a);
  const b = secureContextFor(params(undefined, 'TLSv1.3'), memory);
  assert.notEqual(b, a);
  assert.equal(secureContextFor(params(undefined, 'TLSv1.3'), memory), b);
  assert.notEqual(secureContextFor(params(), memory, 'lean'), a, 'the lean hello has a context of its own');
});

test('a fresh memory starts without the contexts of another', () => {
  const one = new Pop3Memory();
  const two = new Pop3Memory();
  assert.notEqual(secureContextFor(params(), two), secureContextFor(params(), one));
});
