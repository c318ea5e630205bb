// Public surface of the POP3 client library; everything outside src/pop3 imports from here.
export { Pop3Client, parseApopTimestamp, MAX_MECHANISM_ATTEMPTS } from './client.js';
export type { Pop3Options, LoginOptions, Pop3Stats } from './client.js';
export { Pop3Memory, serverKeyOf } from './memory.js';
export type { ServerFacts, ServerNotebook, PeerCertificateInfo } from './memory.js';
export { Capabilities } from './capabilities.js';
export { Pop3Error, errorFromReply, parseRespCode, errorCodeOf } from './errors.js';
export type { Pop3ErrorCode, RetryHint } from './errors.js';
export type { AuthMechanism, ConcreteMechanism, MechanismRequest, MechanismClass } from './auth/policy.js';
export { chooseMechanism, candidateMechanisms, MECHANISM_CLASS } from './auth/policy.js';
export type { TlsInfo } from './tls-policy.js';
export { normalizeFingerprint } from './tls-policy.js';
export type { SessionState } from './session-context.js';
export { ReplyReader } from './reader.js';
export type { DecodedReply, ReplyExpectation, ReplyStatus } from './reader.js';
export { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, DEFAULT_PIPELINE_WINDOW } from './limits.js';
