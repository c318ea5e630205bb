// The TLS secure context is built once per (hello, minimum version, CA) and memory, and reused, so repeated polls do not grow native memory; a CA is trusted next to the default roots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tls from 'node:tls';
import { makeTestCA, type TestCerts } from '../support/certs.js';
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

/** Whether a client with `ctx` accepts the TLS server `certs` runs (its chain and the name localhost verified). */
async function accepts(ctx: tls.SecureContext, certs: TestCerts): Promise<boolean> {
  const server = tls.createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<boolean>((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: ctx, rejectUnauthorized: true });
      sock.once('secureConnect', () => {
        resolve(sock.authorized);
        sock.destroy();
      });
      sock.once('error', () => resolve(false));
    });
  } finally {
    server.close();
  }
}

test('a context with ca trusts that CA; one without does not', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'p2m-ctx-'));
  try {
    const own = await makeTestCA(dir);
    const memory = new Pop3Memory();
    assert.equal(await accepts(secureContextFor(params(readFileSync(own.caFile, 'utf8')), memory), own), true, 'the ca is trusted');
    assert.equal(await accepts(secureContextFor(params(), memory), own), false, 'without ca it is not');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
