// Connection diagnosis for `pop2mqtt probe`: what the server offers, what the client would choose, and warnings; never secrets.
import path from 'node:path';
import { loginHint } from '../../mailbox/login-hints.js';
import { clientOptionsOf, pollTargetOf } from '../../mailbox/target.js';
import type { MailboxConfig } from '../../config/index.js';
import { Pop3Client, chooseMechanism, errorCodeOf, type Capabilities } from '../../pop3/index.js';

export interface ProbeReport {
  mailbox: string;
  host: string;
  port: number;
  tls: string;
  greeting?: string;
  apop: boolean;
  capaBeforeTls?: string[] | null;
  capaBeforeLogin?: string[] | null;
  capaAfterLogin?: string[] | null;
  tlsProtocol?: string;
  tlsCipher?: string;
  tlsResumed?: boolean;
  certificate?: { subject: string; issuer: string; validFrom: string; validTo: string; fingerprint256: string; verified: boolean; daysLeft: number };
  caFile?: string;
  fingerprintPin?: string;
  saslOffered: string[];
  mechanismChosen?: string;
  loggedIn: boolean;
  messages?: number;
  octets?: number;
  top?: boolean;
  uidl?: boolean;
  pipelining?: boolean;
  error?: { code: string; message: string };
  warnings: string[];
}

export async function probeMailbox(
  mb: MailboxConfig,
  o: { configDir: string; /** For OAuth mailboxes: a fresh access token (the agent's own token manager). */ accessToken?: () => Promise<string> },
): Promise<ProbeReport> {
  const caFile = mb.ca_file ? path.resolve(o.configDir, mb.ca_file) : undefined;
  const r: ProbeReport = {
    mailbox: mb.id, host: mb.host, port: mb.port, tls: mb.tls, apop: false, saslOffered: [], loggedIn: false, warnings: [],
    caFile, fingerprintPin: mb.fingerprint,
  };
  let client: Pop3Client | undefined;
  try {
    const target = pollTargetOf(mb, o.configDir);
    client = await Pop3Client.connect(clientOptionsOf(target));
    r.greeting = client.greeting;
    r.apop = client.apopTimestamp !== null;
    r.capaBeforeTls = client.capabilitiesBeforeTls?.lines ?? (mb.tls === 'starttls' ? null : undefined);
    const pre: Capabilities | null = client.capabilities ?? (await client.capa());
    r.capaBeforeLogin = pre?.lines ?? null;
    r.saslOffered = pre?.get('SASL') ?? [];
    const tlsInfo = client.tlsInfo;
    if (tlsInfo) {
      r.tlsProtocol = tlsInfo.protocol;
      r.tlsCipher = tlsInfo.cipher;
      r.tlsResumed = tlsInfo.resumed;
      const c = tlsInfo.peerCertificate;
      const daysLeft = Math.floor((Date.parse(c.validTo) - Date.now()) / 86_400_000);
      r.certificate = { subject: c.subject, issuer: c.issuer, validFrom: c.validFrom, validTo: c.validTo, fingerprint256: c.fingerprint256, verified: tlsInfo.authorized, daysLeft };
    }
    try {
      r.mechanismChosen = chooseMechanism({
        requested: target.auth, capabilities: pre, apopTimestamp: client.apopTimestamp, secure: client.tlsInfo !== null,
        allowInsecureAuth: mb.allow_insecure_auth, hasPassword: mb.password !== undefined, hasToken: !!mb.oauth,
      });
    } catch (err) {
      r.mechanismChosen = undefined;
      r.warnings.push(`no acceptable auth mechanism: ${(err as Error).message}`);
    }
    if (mb.password !== undefined || o.accessToken) {
      // With a password the password mechanisms (as the agent does); otherwise the OAuth token, fetched like the agent does.
      const accessToken = mb.password === undefined && o.accessToken ? await o.accessToken() : undefined;
      const login = await client.login({
        username: target.username, password: target.password, accessToken, mechanism: target.auth, allowInsecureAuth: target.allowInsecureAuth,
      });
      r.mechanismChosen = login.mechanism;
      r.loggedIn = true;
      r.capaAfterLogin = login.capabilities?.lines ?? null;
      const stat = await client.stat();
      r.messages = stat.count;
      r.octets = stat.size;
      const caps = login.capabilities ?? pre;
      r.pipelining = !!caps?.has('PIPELINING');
      if (stat.count > 0) {
        r.uidl = await client.uidl(1).then((u) => u !== null, () => false);
        r.top = await client.top(1, 0).then(() => !client!.stats.topFallbacks, () => false);
      } else {
        r.uidl = caps ? caps.has('UIDL') : undefined;
        r.top = caps ? caps.has('TOP') : undefined;
      }
    } else {
      r.warnings.push('neither a password nor OAuth settings: probe checks TLS and capabilities only');
    }
    await client.quit();
  } catch (err) {
    client?.destroy();
    r.error = { code: errorCodeOf(err), message: (err as Error).message };
    const hint = loginHint(mb.host, err, mb.password !== undefined);
    if (hint) r.warnings.push(hint);
  }
  if (r.tls === 'none') r.warnings.push('cleartext connection: everything, including mail, crosses the network unencrypted');
  if (r.mechanismChosen === 'apop') r.warnings.push('APOP is weak (MD5 of a timestamp and the password; offline guessing is cheap)');
  if (r.mechanismChosen === 'cram-md5') r.warnings.push('CRAM-MD5 is weak (HMAC-MD5; the server stores the password in clear)');
  if (r.certificate && r.certificate.daysLeft < 14) r.warnings.push(`certificate expires in ${r.certificate.daysLeft} days`);
  if (r.uidl === false) r.warnings.push('no UIDL: messages are identified by a hash of Message-ID, Date, From and size');
  if (r.top === false) r.warnings.push('no TOP: header previews fall back to RETR (whole messages)');
  return r;
}

export function formatProbe(r: ProbeReport): string {
  const out: string[] = [];
  const line = (k: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== '') out.push(`  ${k.padEnd(20)} ${Array.isArray(v) ? v.join(' ') : String(v)}`);
  };
  out.push(`mailbox ${r.mailbox}: ${r.host}:${r.port} (tls: ${r.tls})`);
  line('greeting', r.greeting);
  line('APOP offered', r.greeting ? (r.apop ? 'yes' : 'no') : undefined);
  if (r.capaBeforeTls !== undefined) line('CAPA before STLS', r.capaBeforeTls ?? '(CAPA not supported)');
  line(r.tls === 'starttls' ? 'CAPA after STLS' : 'CAPA before login', r.capaBeforeLogin === null ? '(CAPA not supported)' : r.capaBeforeLogin);
  line('CAPA after login', r.capaAfterLogin === null ? '(CAPA not supported)' : r.capaAfterLogin);
  line('TLS', r.tlsProtocol ? `${r.tlsProtocol} ${r.tlsCipher}${r.tlsResumed ? ' (resumed)' : ''}` : undefined);
  if (r.certificate) {
    const c = r.certificate;
    line('certificate subject', c.subject);
    line('certificate issuer', c.issuer);
    line('certificate expires', `${c.validTo} (${c.daysLeft} days)`);
    line('certificate verified', c.verified ? 'yes' : 'NO');
    line('certificate sha256', c.fingerprint256);
  }
  line('ca_file', r.caFile);
  const pinState = r.certificate ? 'matched' : r.error?.code === 'EFINGERPRINT' ? 'does NOT match the certificate' : 'not checked';
  line('fingerprint pin', r.fingerprintPin ? `${r.fingerprintPin} (${pinState})` : undefined);
  line('SASL offered', r.saslOffered.length ? r.saslOffered : '(none)');
  line('auth chosen', r.mechanismChosen);
  line('logged in', r.error && !r.loggedIn ? 'no' : r.loggedIn ? 'yes' : undefined);
  line('messages', r.messages !== undefined ? `${r.messages} (${r.octets} octets)` : undefined);
  line('TOP usable', r.top === undefined ? undefined : r.top ? 'yes' : 'no');
  line('UIDL usable', r.uidl === undefined ? undefined : r.uidl ? 'yes' : 'no');
  line('PIPELINING', r.pipelining === undefined ? undefined : r.pipelining ? 'yes' : 'no');
  if (r.error) out.push(`  ERROR [${r.error.code}] ${r.error.message}`);
  for (const w of r.warnings) out.push(`  warning: ${w}`);
  return out.join('\n');
}
