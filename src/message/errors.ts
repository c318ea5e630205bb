// The error type for mail that cannot be parsed or breaks a parsing limit; carries a stable code for logs and tests.

export type MessageParseErrorCode = 'HEADER_TOO_LARGE' | 'TOO_MANY_HEADERS' | 'MALFORMED_HEADERS' | 'MIME_ERROR';

export class MessageParseError extends Error {
  readonly code: MessageParseErrorCode;
  constructor(code: MessageParseErrorCode, message: string) {
    super(message);
    this.name = 'MessageParseError';
    this.code = code;
  }
}
