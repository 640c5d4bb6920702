/**
 * Typed option values: getters that read one option from a decoded packet and reject the wrong size, and builders
 * that turn typed values into option bytes for replies. Getters join split occurrences first (RFC 3396).
 */
import { ipToInt } from '../host/ipv4.js'
import { DhcpError } from './errors.js'
import { DhcpOptionCode, decodeSubOptions, getOption, type DhcpOption } from './options.js'

/** What the getters need from a packet: its option list. */
export interface HasOptions {
  options: readonly DhcpOption[]
}

function sizeError(code: number, len: number, expected: string): DhcpError {
  return new DhcpError('ERR_DHCP_BAD_OPTION', `DHCP option ${code} has ${len} bytes, expected ${expected}`)
}

function exact(p: HasOptions, code: number, size: number): Buffer | undefined {
  const data = getOption(p.options, code)
  if (data !== undefined && data.length !== size) throw sizeError(code, data.length, String(size))
  return data
}

/** Formats 4 bytes as a dotted quad. */
export function formatIPv4(b: Buffer, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`
}

/** Parses a dotted quad into 4 bytes; throws ERR_DHCP_ENCODE for anything else. */
export function parseIPv4(ip: string): Buffer {
  const n = ipToInt(ip)
  if (n === undefined) throw new DhcpError('ERR_DHCP_ENCODE', `not an IPv4 address: ${JSON.stringify(ip)}`)
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** Option 53 (RFC 2132 9.6): the DHCP message type, or undefined for plain BOOTP. */
export function messageType(p: HasOptions): number | undefined {
  return exact(p, DhcpOptionCode.MESSAGE_TYPE, 1)?.[0]
}

/** Option 52 (RFC 2132 9.3): 1 = file, 2 = sname, 3 = both carry options. */
export function overload(p: HasOptions): 1 | 2 | 3 | undefined {
  const data = exact(p, DhcpOptionCode.OVERLOAD, 1)
  if (data === undefined) return undefined
  const v = data[0] as number
  if (v !== 1 && v !== 2 && v !== 3) {
    throw new DhcpError('ERR_DHCP_BAD_OVERLOAD', `DHCP option 52 (overload) is ${v}, expected 1, 2 or 3`)
  }
  return v
}

/** Option 93 (RFC 4578 2.1): client architecture types, in the client's order of preference. */
export function clientArchitectures(p: HasOptions): number[] | undefined {
  const data = getOption(p.options, DhcpOptionCode.CLIENT_ARCH)
  if (data === undefined) return undefined
  if (data.length === 0 || data.length % 2 !== 0) {
    throw sizeError(DhcpOptionCode.CLIENT_ARCH, data.length, 'a non-zero multiple of 2')
  }
  const out: number[] = []
  for (let i = 0; i < data.length; i += 2) out.push(data.readUInt16BE(i))
  return out
}

/** Option 94 (RFC 4578 2.2): network device interface, e.g. UNDI 3.0 (EDK2) or 2.1 (BIOS PXE ROM). */
export function clientNdi(p: HasOptions): { type: number; major: number; minor: number } | undefined {
  const data = exact(p, DhcpOptionCode.CLIENT_NDI, 3)
  if (data === undefined) return undefined
  return { type: data[0] as number, major: data[1] as number, minor: data[2] as number }
}

/** Formats 16 bytes in the canonical 8-4-4-4-12 form, in wire (network) byte order. */
export function formatUuid(b: Buffer): string {
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/**
 * Option 97 (RFC 4578 2.3): type (0) and the SMBIOS UUID as the firmware sent it. iPXE byte-swaps the first three
 * fields relative to `${uuid}` on SMBIOS >= 2.6, so comparisons must normalize; this getter does not.
 */
export function clientUuid(p: HasOptions): { type: number; uuid: string } | undefined {
  const data = exact(p, DhcpOptionCode.CLIENT_UUID, 17)
  if (data === undefined) return undefined
  return { type: data[0] as number, uuid: formatUuid(data.subarray(1)) }
}

/**
 * Option 77 user classes. RFC 3004 wants length-prefixed items, but iPXE (and many others) send the bare string
 * `iPXE`; the value is read as RFC 3004 only when the length prefixes consume it exactly, otherwise as one raw class.
 */
export function userClasses(p: HasOptions): string[] | undefined {
  const data = getOption(p.options, DhcpOptionCode.USER_CLASS)
  if (data === undefined) return undefined
  if (data.length === 0) throw sizeError(DhcpOptionCode.USER_CLASS, 0, 'at least 1')
  const items: string[] = []
  let pos = 0
  while (pos < data.length) {
    const len = data[pos] as number
    if (len === 0 || pos + 1 + len > data.length) return [data.toString('latin1')]
    items.push(data.toString('latin1', pos + 1, pos + 1 + len))
    pos += 1 + len
  }
  return items
}

/** Encodes user classes with the RFC 3004 length prefixes. */
export function encodeUserClasses(classes: string[]): Buffer {
  return Buffer.concat(classes.map((c) => Buffer.concat([Buffer.from([c.length]), Buffer.from(c, 'latin1')])))
}

/** A text option (60 vendor class, 12 host name, 67 boot file, ...), read as latin1 so no byte is lost. */
export function textOption(p: HasOptions, code: number): string | undefined {
  return getOption(p.options, code)?.toString('latin1')
}

/** Option 60 (RFC 2132 9.13): vendor class identifier, e.g. `PXEClient:Arch:00007:UNDI:003000`. */
export function vendorClass(p: HasOptions): string | undefined {
  return textOption(p, DhcpOptionCode.VENDOR_CLASS)
}

/** A 4-byte address option (50 requested IP, 54 server identifier, ...). */
export function ipv4Option(p: HasOptions, code: number): string | undefined {
  const data = exact(p, code, 4)
  return data === undefined ? undefined : formatIPv4(data)
}

/** Option 57 (RFC 2132 9.10): maximum DHCP message size the client accepts. */
export function maxMessageSize(p: HasOptions): number | undefined {
  return exact(p, DhcpOptionCode.MAX_MESSAGE_SIZE, 2)?.readUInt16BE(0)
}

/** Option 55 (RFC 2132 9.8): the option codes the client asks for. */
export function parameterList(p: HasOptions): number[] | undefined {
  const data = getOption(p.options, DhcpOptionCode.PARAMETER_LIST)
  return data === undefined ? undefined : [...data]
}

/** Option 61 (RFC 2132 9.14): the client identifier, raw (type byte included): clients put anything there. */
export function clientId(p: HasOptions): Buffer | undefined {
  return getOption(p.options, DhcpOptionCode.CLIENT_ID)
}

/** Option 43 read as PXE sub-options (PXE spec 2.1 section 2.2). */
export function pxeVendorOptions(p: HasOptions): DhcpOption[] | undefined {
  const data = getOption(p.options, DhcpOptionCode.VENDOR_SPECIFIC)
  return data === undefined ? undefined : decodeSubOptions(DhcpOptionCode.VENDOR_SPECIFIC, data)
}

/** Option 175 read as iPXE sub-options (0xb1 bus id, 0xeb version, feature flags such as 0x13 HTTP, 0x24 EFI). */
export function ipxeOptions(p: HasOptions): DhcpOption[] | undefined {
  const data = getOption(p.options, DhcpOptionCode.IPXE_ENCAP)
  return data === undefined ? undefined : decodeSubOptions(DhcpOptionCode.IPXE_ENCAP, data)
}

/** Builds a one-byte option value. */
export function u8Value(n: number): Buffer {
  return Buffer.from([n])
}

/** Builds a text option value (latin1), refusing values that do not fit one option. */
export function textValue(s: string): Buffer {
  const b = Buffer.from(s, 'latin1')
  if (b.length > 255) throw new DhcpError('ERR_DHCP_ENCODE', `DHCP text option value has ${b.length} bytes, at most 255 fit`)
  return b
}

/**
 * Checks every option whose structure decode promises (52, 53, 93, 94, 97, 77, 175, and 43 when option 60 says
 * PXEClient): these steer PXE decisions, so a packet with a malformed one is rejected as a whole rather than
 * half-understood. Option 43 from other senders is vendor-defined (not always TLV), so it is left raw.
 */
export function checkTypedOptions(p: HasOptions): void {
  messageType(p)
  overload(p)
  clientArchitectures(p)
  clientNdi(p)
  exact(p, DhcpOptionCode.CLIENT_UUID, 17) // clientUuid's size check, without formatting the UUID twice per request
  userClasses(p)
  if (vendorClass(p)?.startsWith('PXEClient') === true) pxeVendorOptions(p)
  ipxeOptions(p)
}
