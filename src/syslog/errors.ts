/**
 * The one error class of the syslog codec. Every decode failure is a SyslogError with a stable `code`, so the
 * receiver can count drops by reason and tell a malformed line from a bug in its own code.
 */

/** Stable machine-readable reasons a syslog line was rejected. */
export type SyslogErrorCode =
  | 'ERR_SYSLOG_EMPTY' // nothing but whitespace, NULs or an octet count
  | 'ERR_SYSLOG_TOO_LONG' // longer than the receiver's cap (RFC 5424 section 6.1: receivers choose their maximum)
  | 'ERR_SYSLOG_BAD_PRI' // "<" not followed by 1-3 digits and ">", or a value over 191 (RFC 5424 section 6.2.1)
  | 'ERR_SYSLOG_BAD_HEADER' // an RFC 5424 header field missing, too long or of the wrong form (section 6.2)
  | 'ERR_SYSLOG_BAD_STRUCTURED_DATA' // RFC 5424 STRUCTURED-DATA that does not parse (section 6.3)

/** Raised by the syslog codec for malformed input; never for bugs elsewhere. */
export class SyslogError extends Error {
  readonly code: SyslogErrorCode

  constructor(code: SyslogErrorCode, message: string) {
    super(message)
    this.name = 'SyslogError'
    this.code = code
  }
}

/** True when `err` is the codec's own error (as opposed to a programming error). */
export function isSyslogError(err: unknown): err is SyslogError {
  return err instanceof SyslogError
}
