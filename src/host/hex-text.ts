/**
 * Text iPXE sent as `${var:hexraw}` (hex digits, no separators) back to a string. Debian's iPXE 2019 builds mangle
 * `:uristring` (bytes >= 0x80 come out sign-extended, and `chain` decodes %26/%3D/%2B back into `&`, `=`, `+`), so
 * free text (SMBIOS serials, product names) travels as hex (test/e2e/discovery-draft.test.ts measured it).
 */

/**
 * Hex -> UTF-8 text with control characters as spaces, runs of spaces folded, trimmed. Undefined when `hex` is not
 * whole hex bytes or encodes more than `maxBytes` bytes (decoded only after the length check).
 */
export function textFromHex(hex: string, maxBytes: number): string | undefined {
  if (hex.length > maxBytes * 2 || !/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return undefined
  return (
    Buffer.from(hex, 'hex')
      .toString('utf8')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x1f\x7f]/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
  )
}
