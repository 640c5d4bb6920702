/**
 * DHCP options: named codes and the TLV option-area codec (RFC 2132 section 2), including PAD/END and the
 * encapsulated sub-options of option 43 (PXE, PXE spec 2.1 section 2.2) and 175 (iPXE feature flags).
 *
 * Options are kept as a list of `{ code, data }` in wire order, one entry per occurrence: RFC 3396 lets a long
 * option be split into several occurrences that the reader concatenates, so the list keeps them apart (for
 * byte-exact re-encoding) and the getters join them.
 */
import { DhcpError } from './errors.js'

/** One option occurrence as it was on the wire: the code and its raw value bytes. */
export interface DhcpOption {
  code: number
  data: Buffer
}

/** Option codes pxebox reads or writes, named after their RFC. */
export const DhcpOptionCode = {
  PAD: 0, // RFC 2132 3.1
  SUBNET_MASK: 1, // RFC 2132 3.3
  ROUTER: 3, // RFC 2132 3.5
  HOST_NAME: 12, // RFC 2132 3.14
  VENDOR_SPECIFIC: 43, // RFC 2132 8.4; PXE spec 2.1 encapsulates its sub-options here
  REQUESTED_IP: 50, // RFC 2132 9.1
  LEASE_TIME: 51, // RFC 2132 9.2
  OVERLOAD: 52, // RFC 2132 9.3: 1 = file, 2 = sname, 3 = both hold options
  MESSAGE_TYPE: 53, // RFC 2132 9.6
  SERVER_ID: 54, // RFC 2132 9.7
  PARAMETER_LIST: 55, // RFC 2132 9.8
  MAX_MESSAGE_SIZE: 57, // RFC 2132 9.10
  VENDOR_CLASS: 60, // RFC 2132 9.13: "PXEClient:Arch:xxxxx:UNDI:yyyzzz" or "HTTPClient..."
  CLIENT_ID: 61, // RFC 2132 9.14 (type byte + id; kept raw)
  TFTP_SERVER: 66, // RFC 2132 9.4 (EDK2 ignores it)
  BOOTFILE: 67, // RFC 2132 9.5
  USER_CLASS: 77, // RFC 3004 (iPXE sends it without the length prefix)
  CLIENT_ARCH: 93, // RFC 4578 2.1: list of 16-bit architecture types
  CLIENT_NDI: 94, // RFC 4578 2.2: type, major, minor
  CLIENT_UUID: 97, // RFC 4578 2.3: type 0 + 16-byte UUID
  IPXE_ENCAP: 175, // iPXE encapsulated options (feature flags, bus id, version)
  END: 255, // RFC 2132 3.2
} as const

/** DHCP message types (option 53, RFC 2132 section 9.6). */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const

/** PXE sub-options of option 43 (PXE spec 2.1 table 2-1) that pxebox writes or reads. */
export const PxeSubOption = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const

/**
 * How one option area (the options field, or `file`/`sname` when overloaded) was laid out on the wire, beyond the
 * option values: `tokens` lists option indexes (>= 0) and runs of PAD bytes (negative: -n = n PADs), in order;
 * `end` says an END byte followed; `tail` holds whatever came after END (usually zero padding).
 */
export interface OptionAreaLayout {
  tokens: number[]
  end: boolean
  tail: Buffer
}

/**
 * Reads the TLV options in `buf` (one whole area), appending each occurrence to `into`. `where` names the area in
 * error messages (empty for the main options field). Option values and the tail are views into `buf`, not copies
 * (one allocation per option was most of decode's cost): pass a buffer the packet may own, as decode does.
 */
export function decodeOptionArea(buf: Buffer, into: DhcpOption[], where = ''): OptionAreaLayout {
  const tokens: number[] = []
  let pos = 0
  while (pos < buf.length) {
    const code = buf[pos] as number
    if (code === DhcpOptionCode.PAD) {
      let run = 0
      while (pos < buf.length && buf[pos] === DhcpOptionCode.PAD) {
        run++
        pos++
      }
      tokens.push(-run)
      continue
    }
    if (code === DhcpOptionCode.END) {
      return { tokens, end: true, tail: buf.subarray(pos + 1) }
    }
    if (pos + 1 >= buf.length) {
      throw new DhcpError('ERR_DHCP_OPTION_OVERRUN', `DHCP option ${code} has no length byte${where}`)
    }
    const len = buf[pos + 1] as number
    const remaining = buf.length - pos - 2
    if (len > remaining) {
      throw new DhcpError('ERR_DHCP_OPTION_OVERRUN', `DHCP option ${code} claims ${len} bytes, only ${remaining} remain${where}`)
    }
    tokens.push(into.length)
    into.push({ code, data: buf.subarray(pos + 2, pos + 2 + len) })
    pos += 2 + len
  }
  // RFC 2131 requires END, but some clients stop at the end of the packet; accept that and remember it.
  return { tokens, end: false, tail: Buffer.alloc(0) }
}

/** Bytes one option occurrence takes on the wire. */
function optionLength(opt: DhcpOption): number {
  return 2 + opt.data.length
}

/** Writes one option occurrence; values over 255 bytes must have been split by the caller (RFC 3396). */
function writeOption(opt: DhcpOption, out: Buffer, pos: number): number {
  if (!Number.isInteger(opt.code) || opt.code <= 0 || opt.code >= 255) {
    throw new DhcpError('ERR_DHCP_ENCODE', `DHCP option code ${opt.code} cannot be encoded`)
  }
  if (opt.data.length > 255) {
    throw new DhcpError('ERR_DHCP_ENCODE', `DHCP option ${opt.code} has ${opt.data.length} bytes, at most 255 fit`)
  }
  out[pos] = opt.code
  out[pos + 1] = opt.data.length
  opt.data.copy(out, pos + 2)
  return pos + optionLength(opt)
}

/** Size in bytes of an area written with `layout`. */
export function optionAreaLength(options: DhcpOption[], layout: OptionAreaLayout): number {
  let n = 0
  for (const t of layout.tokens) n += t < 0 ? -t : optionLength(options[t] as DhcpOption)
  return n + (layout.end ? 1 : 0) + layout.tail.length
}

/** Writes an area exactly as `layout` describes it, into `out` at `pos`; returns the position after it. */
export function writeOptionArea(options: DhcpOption[], layout: OptionAreaLayout, out: Buffer, pos: number): number {
  for (const t of layout.tokens) {
    if (t < 0) {
      out.fill(DhcpOptionCode.PAD, pos, pos - t)
      pos -= t
    } else {
      pos = writeOption(options[t] as DhcpOption, out, pos)
    }
  }
  if (layout.end) out[pos++] = DhcpOptionCode.END
  layout.tail.copy(out, pos)
  return pos + layout.tail.length
}

/**
 * Reads encapsulated sub-options (option 43, 175): the same TLV format, PAD skipped, stopping at END. Values are
 * views into `buf` (an option value of a decoded packet), like decodeOptionArea's.
 * Errors name the parent option: `DHCP option 43 sub-option 10 claims 20 bytes, only 3 remain`.
 */
export function decodeSubOptions(parent: number, buf: Buffer): DhcpOption[] {
  const out: DhcpOption[] = []
  let pos = 0
  while (pos < buf.length) {
    const code = buf[pos] as number
    if (code === DhcpOptionCode.PAD) {
      pos++
      continue
    }
    if (code === DhcpOptionCode.END) break
    if (pos + 1 >= buf.length) {
      throw new DhcpError('ERR_DHCP_OPTION_OVERRUN', `DHCP option ${parent} sub-option ${code} has no length byte`)
    }
    const len = buf[pos + 1] as number
    const remaining = buf.length - pos - 2
    if (len > remaining) {
      throw new DhcpError(
        'ERR_DHCP_OPTION_OVERRUN',
        `DHCP option ${parent} sub-option ${code} claims ${len} bytes, only ${remaining} remain`,
      )
    }
    out.push({ code, data: buf.subarray(pos + 2, pos + 2 + len) })
    pos += 2 + len
  }
  return out
}

/** Writes encapsulated sub-options, followed by END when `end` is set (PXE option 43 ends with 255). */
export function encodeSubOptions(subs: DhcpOption[], opts: { end: boolean }): Buffer {
  let size = opts.end ? 1 : 0
  for (const s of subs) size += optionLength(s)
  const out = Buffer.alloc(size)
  let pos = 0
  for (const s of subs) pos = writeOption(s, out, pos)
  if (opts.end) out[pos] = DhcpOptionCode.END
  return out
}

/** All occurrences of `code` joined (RFC 3396 long options), or undefined when absent. */
export function getOption(options: readonly DhcpOption[], code: number): Buffer | undefined {
  // A loop rather than filter(): the getters run a dozen times per request, and nearly every option occurs once.
  let first: Buffer | undefined
  let parts: Buffer[] | undefined
  for (const o of options) {
    if (o.code !== code) continue
    if (first === undefined) first = o.data
    else (parts ??= [first]).push(o.data)
  }
  return parts === undefined ? first : Buffer.concat(parts)
}
