// End-to-end: `pop2mqtt probe` against real Dovecot (STLS, implicit TLS, plaintext) and GNU Mailutils (no SASL): what it reports, exit codes, no secrets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startLab, runCli, USER, PASS, type Lab } from '../support/lab.js';
import { startMailutils, type MailutilsServer } from '../support/mailutils.js';
import { makeMail } from '../support/maildir.js';

const T = { timeout: 60_000 };

let lab: Lab;
let mu: MailutilsServer | undefined;
let seq = 0;
const MAILS = [makeMail({ subject: 'one' }), makeMail({ subject: 'two', body: 'x'.repeat(3000) })];
const OCTETS = MAILS.reduce((n, m) => n + Buffer.byteLength(m), 0);

before(async () => {
  lab = await startLab();
  await lab.dovecot.deliverMany(USER, MAILS);
});
after(async () => {
  await mu?.stop();
  await lab?.stop();
});

interface MailboxYaml {
  port: number;
  tls: 'starttls' | 'implicit' | 'none';
  caFile?: string;
  username?: string;
  extra?: string;
}

function probeConfig(m: MailboxYaml): string {
  return `mqtt:
  url: ${lab.mosquitto.url}
mailboxes:
  - id: home
    host: 127.0.0.1
    port: ${m.port}
    tls: ${m.tls}
${m.caFile ? `    ca_file: ${m.caFile}\n` : ''}    username: ${m.username ?? USER}
    password: \${POP3_PASSWORD}
${m.extra ?? ''}rules: []
`;
}

async function probe(m: MailboxYaml, opts: { json?: boolean; password?: string } = {}) {
  const cfg = await lab.writeConfig(probeConfig(m), `probe-${++seq}.yaml`);
  const r = await runCli(['probe', '--config', cfg, ...(opts.json ? ['--json'] : [])], {
    env: { ...lab.env, POP3_PASSWORD: opts.password ?? PASS }, cwd: lab.dir, timeoutMs: 30_000,
  });
  const password = opts.password ?? PASS;
  assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'the password never appears in the output');
  return r;
}

/** The `  key<padded to 20> value` lines of the text report. */
function fields(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^ {2}(\S.{19}) (.*)$/.exec(line);
    if (m && !line.startsWith('  warning:') && !line.startsWith('  ERROR')) out.set(m[1]!.trim(), m[2]!);
  }
  return out;
}

const words = (v: string | undefined) => (v ?? '').split(' ');
const serverCert = () => new X509Certificate(readFileSync(lab.dovecot.certs.certFile));
const caSubject = () => new X509Certificate(readFileSync(lab.dovecot.caFile)).subject;

test('Dovecot over STLS: greeting with APOP timestamp, CAPA before and after STLS, TLS and certificate, SASL, plain chosen inside TLS, counts; --json says the same', T, async () => {
  const mb: MailboxYaml = { port: lab.dovecot.port, tls: 'starttls', caFile: lab.dovecot.caFile };
  const r = await probe(mb);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^mailbox home: 127\\.0\\.0\\.1:${lab.dovecot.port} \\(tls: starttls\\)`));
  const f = fields(r.stdout);
  assert.match(f.get('greeting')!, /^Dovecot .*<[^<>@\s]+@[^<>\s]+>$/, 'Dovecot greeting carries an APOP timestamp');
  assert.equal(f.get('APOP offered'), 'yes');
  const before = words(f.get('CAPA before STLS'));
  for (const c of ['STLS', 'TOP', 'UIDL', 'PIPELINING', 'SASL', 'SCRAM-SHA-256']) assert.ok(before.includes(c), `CAPA before STLS has ${c}: ${before.join(' ')}`);
  const after = words(f.get('CAPA after STLS'));
  assert.ok(!after.includes('STLS'), `no STLS after the upgrade: ${after.join(' ')}`);
  for (const c of ['TOP', 'UIDL', 'SASL', 'SCRAM-SHA-256']) assert.ok(after.includes(c), `CAPA after STLS has ${c}`);
  const afterLogin = words(f.get('CAPA after login'));
  assert.ok(afterLogin.includes('TOP') && !afterLogin.includes('SASL'), afterLogin.join(' '));
  assert.match(f.get('TLS')!, /^TLSv1\.[23] [A-Z0-9_-]+$/);
  const cert = serverCert();
  assert.equal(f.get('certificate subject'), cert.subject);
  assert.equal(f.get('certificate subject'), 'CN=localhost');
  assert.equal(f.get('certificate issuer'), caSubject());
  assert.match(f.get('certificate expires')!, new RegExp(`^${cert.validTo} \\(\\d+ days\\)$`));
  assert.equal(f.get('certificate verified'), 'yes');
  assert.equal(f.get('certificate sha256'), cert.fingerprint256);
  for (const m of ['PLAIN', 'CRAM-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256']) assert.ok(words(f.get('SASL offered')).includes(m), f.get('SASL offered'));
  assert.equal(f.get('auth chosen'), 'plain');
  assert.equal(f.get('logged in'), 'yes');
  assert.equal(f.get('messages'), `2 (${OCTETS} octets)`);
  assert.equal(f.get('TOP usable'), 'yes');
  assert.equal(f.get('UIDL usable'), 'yes');
  assert.equal(f.get('PIPELINING'), 'yes');
  assert.doesNotMatch(r.stdout, /ERROR|warning/);

  const j = await probe(mb, { json: true });
  assert.equal(j.code, 0);
  const reports = JSON.parse(j.stdout) as Array<Record<string, any>>;
  assert.equal(reports.length, 1);
  const p = reports[0]!;
  assert.equal(p.mailbox, 'home');
  assert.equal(p.tls, 'starttls');
  assert.equal(p.port, lab.dovecot.port);
  assert.match(p.greeting, /^Dovecot .*<[^<>]+>$/);
  assert.equal(p.apop, true);
  assert.ok(p.capaBeforeTls.includes('STLS'));
  assert.ok(!p.capaBeforeLogin.includes('STLS'));
  assert.ok(p.capaBeforeLogin.includes('TOP'));
  assert.equal(`${p.tlsProtocol} ${p.tlsCipher}`, f.get('TLS'));
  assert.equal(p.certificate.subject, cert.subject);
  assert.equal(p.certificate.issuer, caSubject());
  assert.equal(p.certificate.validTo, cert.validTo);
  assert.equal(p.certificate.fingerprint256, cert.fingerprint256);
  assert.equal(p.certificate.verified, true);
  assert.ok(p.certificate.daysLeft > 300);
  assert.deepEqual(p.saslOffered, words(f.get('SASL offered')));
  assert.equal(p.mechanismChosen, 'plain');
  assert.equal(p.loggedIn, true);
  assert.equal(p.messages, 2);
  assert.equal(p.octets, OCTETS);
  assert.equal(p.top, true);
  assert.equal(p.uidl, true);
  assert.equal(p.pipelining, true);
  assert.equal(p.error, undefined);
  assert.deepEqual(p.warnings, []);
});

test('Dovecot over implicit TLS: no STLS stage, TLS and verified certificate, plain, exit 0', T, async () => {
  const r = await probe({ port: lab.dovecot.tlsPort, tls: 'implicit', caFile: lab.dovecot.caFile });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const f = fields(r.stdout);
  assert.equal(f.has('CAPA before STLS'), false);
  const capa = words(f.get('CAPA before login'));
  assert.ok(capa.includes('SASL') && capa.includes('TOP') && !capa.includes('STLS'), capa.join(' '));
  assert.equal(f.get('APOP offered'), 'yes');
  assert.match(f.get('TLS')!, /^TLSv1\.[23] \S+$/);
  assert.equal(f.get('certificate verified'), 'yes');
  assert.equal(f.get('certificate sha256'), serverCert().fingerprint256);
  assert.equal(f.get('auth chosen'), 'plain');
  assert.equal(f.get('messages'), `2 (${OCTETS} octets)`);
  assert.equal(f.get('TOP usable'), 'yes');

  const j = JSON.parse((await probe({ port: lab.dovecot.tlsPort, tls: 'implicit', caFile: lab.dovecot.caFile }, { json: true })).stdout)[0];
  assert.equal(j.capaBeforeTls, undefined);
  assert.equal(j.loggedIn, true);
  assert.equal(j.certificate.verified, true);
});

test('wrong password: exit 1, the error code shown, not logged in', T, async () => {
  const wrong = 'not-the-Password-9876';
  const r = await probe({ port: lab.dovecot.tlsPort, tls: 'implicit', caFile: lab.dovecot.caFile }, { password: wrong });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ERROR \[EAUTH\]/);
  const f = fields(r.stdout);
  assert.equal(f.get('logged in'), 'no');
  assert.equal(f.get('auth chosen'), 'plain');
  const j = JSON.parse((await probe({ port: lab.dovecot.tlsPort, tls: 'implicit', caFile: lab.dovecot.caFile }, { password: wrong, json: true })).stdout)[0];
  assert.equal(j.error.code, 'EAUTH');
  assert.equal(j.loggedIn, false);
});

test('tls: none with allow_insecure_auth: logs in, no TLS lines, warns about cleartext', T, async () => {
  const r = await probe({ port: lab.dovecot.port, tls: 'none', extra: '    allow_insecure_auth: true\n' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const f = fields(r.stdout);
  assert.equal(f.has('TLS'), false);
  assert.equal(f.has('certificate verified'), false);
  assert.equal(f.get('logged in'), 'yes');
  assert.match(r.stdout, /warning: .*cleartext/);
  // Even here the strongest offered mechanism is chosen; the password never crosses the wire.
  assert.equal(f.get('auth chosen'), 'scram-sha-256');
});

test('certificate pin: a matching SHA-256 pin is shown as matched; a wrong pin fails with EFINGERPRINT, exit 1', T, async () => {
  const fp = serverCert().fingerprint256;
  const hex = fp.replace(/:/g, '').toLowerCase();
  const ok = await probe({ port: lab.dovecot.port, tls: 'starttls', caFile: lab.dovecot.caFile, extra: `    fingerprint: "${fp}"\n` });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(fields(ok.stdout).get('fingerprint pin'), `${hex} (matched)`);

  const wrongPin = 'ab'.repeat(32);
  const bad = await probe({ port: lab.dovecot.tlsPort, tls: 'implicit', caFile: lab.dovecot.caFile, extra: `    fingerprint: "${wrongPin}"\n` });
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /ERROR \[EFINGERPRINT\]/);
  const pinLine = fields(bad.stdout).get('fingerprint pin')!;
  assert.equal(pinLine, `${wrongPin} (does NOT match the certificate)`);
  assert.equal(fields(bad.stdout).get('logged in'), 'no');
  assert.ok(bad.stdout.includes(fp), 'the error shows the certificate\'s real fingerprint, so the pin can be fixed');
});

test('GNU Mailutils (no SASL): SASL offered none, auth chosen user over STLS, apop when asked (with a weak warning), exit 0', { timeout: 90_000 }, async () => {
  mu = await startMailutils({ users: [{ user: 'alice', pass: PASS }] });
  await mu.deliver('alice', makeMail({ subject: 'mu one' }));
  const base: MailboxYaml = { port: mu.port, tls: 'starttls', caFile: mu.caFile, username: mu.login('alice') };
  const r = await probe(base);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const f = fields(r.stdout);
  assert.equal(f.get('SASL offered'), '(none)');
  assert.equal(f.get('auth chosen'), 'user');
  assert.equal(f.get('APOP offered'), 'yes');
  assert.ok(words(f.get('CAPA before STLS')).includes('STLS'));
  assert.ok(!words(f.get('CAPA after STLS')).includes('STLS'));
  assert.equal(f.get('certificate verified'), 'yes');
  assert.equal(f.get('logged in'), 'yes');
  assert.match(f.get('messages')!, /^1 \(\d+ octets\)$/);
  assert.equal(f.get('UIDL usable'), 'yes');
  assert.equal(f.get('TOP usable'), 'yes');

  const apop = await probe({ ...base, extra: '    auth: apop\n' });
  assert.equal(apop.code, 0, apop.stdout + apop.stderr);
  assert.equal(fields(apop.stdout).get('auth chosen'), 'apop');
  assert.match(apop.stdout, /warning: APOP is weak/);
});
