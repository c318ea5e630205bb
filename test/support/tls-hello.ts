// Reads the cleartext TLS ClientHello a client sent (captured by the relay), so tests can check what a handshake offered.

export interface ClientHello {
  /** Length of the whole TLS record carrying the hello, header included. */
  recordBytes: number;
  cipherSuites: number[];
  /** Extension type -> length of its data. */
  extensions: Map<number, number>;
}

/** TLS 1.3 cipher suites (RFC 8446 B.4): TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256. */
export const TLS13_SUITES = [0x1301, 0x1302, 0x1303];

export function parseClientHello(data: Buffer): ClientHello {
  if (data.length < 9 || data[0] !== 22 || data[5] !== 1) throw new Error('not a TLS handshake record carrying a ClientHello');
  const recordBytes = 5 + data.readUInt16BE(3);
  let p = 5 + 4 + 2 + 32; // record header, handshake header, legacy_version, random
  p += 1 + data[p]!; // legacy_session_id
  const csLen = data.readUInt16BE(p);
  p += 2;
  const cipherSuites: number[] = [];
  for (let i = 0; i < csLen; i += 2) cipherSuites.push(data.readUInt16BE(p + i));
  p += csLen;
  p += 1 + data[p]!; // compression methods
  const extensions = new Map<number, number>();
  const end = p + 2 + data.readUInt16BE(p);
  p += 2;
  while (p < end) {
    extensions.set(data.readUInt16BE(p), data.readUInt16BE(p + 2));
    p += 4 + data.readUInt16BE(p + 2);
  }
  return { recordBytes, cipherSuites, extensions };
}
