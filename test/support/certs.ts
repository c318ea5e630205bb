// Generates throw-away TLS material with openssl for the test servers: a test CA, a valid localhost cert, and broken certs (expired, wrong name) for TLS failure tests.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from './daemon.js';

/** Paths of one generated key pair. `caFile` is the CA that signed `certFile` (what a client must trust). */
export interface TestCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** The CA itself: its cert (trust anchor) and key (to sign more leaf certs). */
interface CaMaterial {
  dir: string;
  caFile: string;
  caKeyFile: string;
}

const OPENSSL = 'openssl';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function ensureCa(dir: string): Promise<CaMaterial> {
  await mkdir(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.pem');
  const caKeyFile = path.join(dir, 'ca.key');
  if (!existsSync(caFile) || !existsSync(caKeyFile)) {
    await run(OPENSSL, [
      'req', '-x509', ...EC, '-keyout', caKeyFile, '-out', caFile, '-days', '3650',
      '-subj', '/CN=pop2mqtt test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  return { dir, caFile, caKeyFile };
}

function stamp(d: Date): string {
  // openssl ca date format: YYYYMMDDHHMMSSZ
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Sign a new P-256 leaf cert for `cn` with the given SAN list and validity window. */
async function signLeaf(
  ca: CaMaterial,
  name: string,
  cn: string,
  san: string,
  notBefore: Date,
  notAfter: Date,
): Promise<TestCerts> {
  const certFile = path.join(ca.dir, `${name}.pem`);
  const keyFile = path.join(ca.dir, `${name}.key`);
  const csr = path.join(ca.dir, `${name}.csr`);
  const db = path.join(ca.dir, `ca-db-${name}`);
  await mkdir(db, { recursive: true });
  await writeFile(path.join(db, 'index.txt'), '');
  await writeFile(path.join(db, 'serial'), Date.now().toString(16).padStart(16, '0') + '\n');
  const cnf = path.join(db, 'ca.cnf');
  await writeFile(
    cnf,
    [
      '[ ca ]', 'default_ca = test_ca',
      '[ test_ca ]', `database = ${db}/index.txt`, `new_certs_dir = ${db}`, `serial = ${db}/serial`,
      'default_md = sha256', 'policy = policy_any', 'copy_extensions = copy', 'unique_subject = no',
      '[ policy_any ]', 'commonName = supplied', '',
    ].join('\n'),
  );
  await run(OPENSSL, ['req', '-new', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`]);
  await run(OPENSSL, [
    'ca', '-batch', '-notext', '-config', cnf, '-cert', ca.caFile, '-keyfile', ca.caKeyFile, '-in', csr, '-out', certFile,
    '-startdate', stamp(notBefore), '-enddate', stamp(notAfter),
  ]);
  return { caFile: ca.caFile, certFile, keyFile };
}

const DAY = 86_400_000;

/**
 * A test CA in `dir` plus a valid server cert for CN=localhost, SAN DNS:localhost, IP:127.0.0.1.
 * Clients trust `caFile`. Nothing is cached outside `dir`; calling again on the same dir reuses the CA.
 */
export async function makeTestCA(dir: string): Promise<TestCerts> {
  const ca = await ensureCa(dir);
  const now = Date.now();
  return signLeaf(ca, 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1', new Date(now - DAY), new Date(now + 3650 * DAY));
}

/** A cert for localhost/127.0.0.1 signed by the same CA in `dir`, but expired (valid 2020-01-01 .. 2020-01-02). */
export async function makeExpiredCert(dir: string): Promise<TestCerts> {
  const ca = await ensureCa(dir);
  return signLeaf(ca, 'expired', 'localhost', 'DNS:localhost,IP:127.0.0.1', new Date('2020-01-01T00:00:00Z'), new Date('2020-01-02T00:00:00Z'));
}

/** A valid cert signed by the same CA in `dir`, for a name that is not localhost/127.0.0.1 (default wrong.example.invalid). */
export async function makeWrongNameCert(dir: string, name = 'wrong.example.invalid'): Promise<TestCerts> {
  const ca = await ensureCa(dir);
  const now = Date.now();
  return signLeaf(ca, `wrongname-${name.replace(/[^\w.-]/g, '_')}`, name, `DNS:${name}`, new Date(now - DAY), new Date(now + 3650 * DAY));
}
