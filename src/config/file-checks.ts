// Checks `pop2mqtt check` makes on the local files a config names: state_dir writable, CA/cert/key files present and parsable.
import { randomBytes, X509Certificate } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { ConfigIssue } from './errors.js';
import { formatPath } from './errors.js';
import type { LoadedConfig } from './load.js';
import { parseYaml } from './yaml-source.js';
import { makeDirs, removeCreatedDirs } from '../state/make-dirs.js';

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * state_dir: created if missing (as the agent would), then a probe file is written, fsynced and removed; directories
 * this check created are removed again while empty. Runs as the invoking user, so run `check` as the service user.
 * A second `check` (or the agent) may start meanwhile: a directory one of them created is never removed under the
 * other's files, and a probe whose directory was just removed by the other check's clean-up is tried again.
 */
export async function checkStateDir(dir: string): Promise<string | null> {
  for (let attempt = 1; ; attempt++) {
    let created: string[] = [];
    try {
      created = await makeDirs(dir);
      const probe = path.join(dir, `.pop2mqtt-check-${randomBytes(6).toString('hex')}`);
      const fh = await fs.open(probe, 'wx', 0o600);
      try {
        await fh.writeFile('check\n');
        await fh.sync();
      } finally {
        await fh.close();
        await fs.rm(probe, { force: true });
      }
      return null;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (code === 'ENOENT' && attempt < 5) continue; // removed by a concurrent check between our mkdir and probe
      return `${dir} is not a writable directory (${code}); the UID state and the outbox are kept there`;
    } finally {
      await removeCreatedDirs(created);
    }
  }
}

/** A CA file: readable, with at least one PEM certificate, each of which parses. */
function checkCaFile(file: string): string | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  const blocks = text.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) return `${file} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----")`;
  for (let i = 0; i < blocks.length; i++) {
    try {
      const cert = new X509Certificate(blocks[i]!);
      if (new Date(cert.validTo).getTime() < Date.now()) return `${file}: certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) expired on ${cert.validTo}`;
    } catch (e) {
      return `${file}: certificate ${i + 1} of ${blocks.length} does not parse (${(e as Error).message})`;
    }
  }
  return null;
}

/** An MQTT client certificate and key: readable, and the key belongs to the certificate. */
function checkClientCert(certFile: string, keyFile: string): string | null {
  try {
    createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
    return null;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' || err.code === 'EACCES') return `cannot read ${err.path ?? certFile}: ${err.code}`;
    return `${certFile} and ${keyFile} do not make a usable certificate and key (${err.message})`;
  }
}

/** Every problem with the files the config names, with key path and YAML line. Touches nothing but a probe file. */
export async function checkConfigFiles(loaded: LoadedConfig): Promise<ConfigIssue[]> {
  const cfg = loaded.config;
  let lineOf: (p: (string | number)[]) => number | undefined = () => undefined;
  try {
    const { source } = parseYaml(readFileSync(loaded.file, 'utf8'));
    if (source) lineOf = (p) => source.lineOf(p);
  } catch {
    // lines are a courtesy
  }
  const issues: ConfigIssue[] = [];
  const add = (p: (string | number)[], message: string | null) => {
    if (message) issues.push({ path: formatPath(p), message, line: lineOf(p) });
  };
  add(['state_dir'], await checkStateDir(cfg.state_dir));
  if (cfg.mqtt.ca_file) add(['mqtt', 'ca_file'], checkCaFile(cfg.mqtt.ca_file));
  if (cfg.mqtt.cert_file && cfg.mqtt.key_file) add(['mqtt', 'cert_file'], checkClientCert(cfg.mqtt.cert_file, cfg.mqtt.key_file));
  cfg.mailboxes.forEach((m, i) => {
    if (m.ca_file) add(['mailboxes', i, 'ca_file'], checkCaFile(m.ca_file));
  });
  return issues;
}
