// A lab POP3 server (Dovecot, Mailutils or Cyrus) on 127.0.0.1: what every harness exposes, and client options for it (plain or implicit-TLS port, the lab CA, generous deadlines).
import type { Pop3Options } from '../../src/pop3/index.js';
import type { TestCerts } from './certs.js';

/** What startDovecot, startMailutils and startCyrus all give. */
export interface LabPop3Server {
  host: '127.0.0.1';
  /** Plain POP3 port, STLS offered (unless Mailutils was started with stls: false). */
  port: number;
  /** Implicit TLS (pop3s) port. */
  tlsPort: number;
  /** CA that signed the server cert; pass to clients as the trust anchor. */
  caFile: string;
  certs: TestCerts;
  dir: string;
  users: { user: string; pass: string }[];
}

/** The LabPop3Server fields of a harness's server object, from the ports it started on, its CA, dir and users. */
export function labPop3Server<U extends { user: string; pass: string }>(
  endpoint: { host: '127.0.0.1'; port: number; tlsPort: number },
  certs: TestCerts,
  dir: string,
  users: U[],
): LabPop3Server & { users: U[] } {
  return { ...endpoint, caFile: certs.caFile, certs, dir, users };
}

export function labClientOptions(
  server: { port: number; tlsPort: number },
  ca: string,
  tls: Pop3Options['tls'],
  extra: Partial<Pop3Options> = {},
): Pop3Options {
  return {
    host: '127.0.0.1',
    port: tls === 'implicit' ? server.tlsPort : server.port,
    tls,
    ca,
    servername: 'localhost',
    timeouts: { connectMs: 5000, greetingMs: 5000, commandMs: 10_000, sessionMs: 60_000 },
    ...extra,
  };
}
