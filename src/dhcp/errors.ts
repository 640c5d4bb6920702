/**
 * The one error class of the DHCP codec. Every decode/encode failure is a DhcpError with a stable `code`, so callers
 * (the server's receive loop, the address tracker) can tell "malformed packet" from a bug in their own code.
 */

/** Stable machine-readable reasons a DHCP packet was rejected. */
export type DhcpErrorCode =
  | 'ERR_DHCP_TRUNCATED' // shorter than the fixed BOOTP header
  | 'ERR_DHCP_BAD_COOKIE' // options area does not start with 99.130.83.99 (RFC 2131 section 3)
  | 'ERR_DHCP_OPTION_OVERRUN' // an option's length runs past the end of its area
  | 'ERR_DHCP_BAD_OVERLOAD' // option 52 has a value other than 1, 2 or 3 (RFC 2132 section 9.3)
  | 'ERR_DHCP_BAD_OPTION' // a typed option has the wrong size or an impossible value
  | 'ERR_DHCP_ENCODE' // a value cannot be encoded (field too long, option over 255 bytes, ...)

/** Raised by the DHCP codec for malformed input or unencodable values; never for bugs elsewhere. */
export class DhcpError extends Error {
  readonly code: DhcpErrorCode

  constructor(code: DhcpErrorCode, message: string) {
    super(message)
    this.name = 'DhcpError'
    this.code = code
  }
}

/** True when `err` is the codec's own error (as opposed to a programming error). */
export function isDhcpError(err: unknown): err is DhcpError {
  return err instanceof DhcpError
}
