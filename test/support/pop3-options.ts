// Client options for a lab POP3 server (Dovecot or Mailutils) on 127.0.0.1: its plain or implicit-TLS port, the lab CA, generous deadlines.
import type { Pop3Options } from '../../src/pop3/index.js';

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
