/**
 * The DHCP/BOOTP packet codec (RFC 2131 section 2, RFC 951): `decode(buf)` and `encode(packet)`, pure functions on
 * plain objects. It decodes every message type (the address tracker watches site traffic with it too), handles
 * option overload of sname/file (RFC 2132 9.3) and remembers the wire layout (PAD runs, where each option sat,
 * bytes after END, odd chaddr/sname/file padding) so that decode -> encode reproduces a packet byte for byte.
 */
import { DhcpError } from './errors.js'
import {
  decodeOptionArea,
  optionAreaLength,
  writeOptionArea,
  DhcpOptionCode,
  type DhcpOption,
  type OptionAreaLayout,
} from './options.js'
import { ipToInt } from '../host/ipv4.js'
import { checkTypedOptions, formatIPv4, overload } from './values.js'

/** Size of the fixed BOOTP header before the magic cookie (RFC 2131 figure 1). */
export const BOOTP_HEADER_LENGTH = 236
/** RFC 2131 section 3: the options field starts with 99.130.83.99. */
export const MAGIC_COOKIE = 0x63825363
/** RFC 1542 section 2.1: BOOTP relay agents may drop messages shorter than 300 bytes, so replies are padded. */
export const MIN_BOOTP_LENGTH = 300

const SNAME_OFFSET = 44
const SNAME_LENGTH = 64
const FILE_OFFSET = 108
const FILE_LENGTH = 128
const OPTIONS_OFFSET = 240

/** Where decode found things, kept only so encode can reproduce the packet exactly. */
export interface DhcpWireLayout {
  /** Number of options decode produced; a different count means the caller edited the list. */
  optionCount: number
  options: OptionAreaLayout
  /** Present when option 52 moved options into `file` (RFC 2132 9.3). */
  file?: OptionAreaLayout
  /** Present when option 52 moved options into `sname`. */
  sname?: OptionAreaLayout
  /** The raw field, kept only when the readable value cannot reproduce it (junk after the NUL, hlen > 16, ...). */
  chaddrRaw?: Buffer
  snameRaw?: Buffer
  fileRaw?: Buffer
}

/** A decoded DHCP/BOOTP message. Addresses are dotted quads, chaddr is lowercase colon hex of `hlen` bytes. */
export interface DhcpPacket {
  /** 1 BOOTREQUEST, 2 BOOTREPLY. */
  op: number
  /** Hardware type, 1 = Ethernet. */
  htype: number
  hlen: number
  hops: number
  xid: number
  secs: number
  /** Bit 15 (0x8000) is the broadcast flag (RFC 2131 section 4.1). */
  flags: number
  ciaddr: string
  yiaddr: string
  siaddr: string
  giaddr: string
  chaddr: string
  /** Server host name text up to the first NUL ('' when the field carries overloaded options). */
  sname: string
  /** Boot file name text up to the first NUL ('' when the field carries overloaded options). */
  file: string
  /** Every option occurrence in wire order: options field, then file, then sname (RFC 2131 section 4.1). */
  options: DhcpOption[]
  /** Set by decode; leave it out when building a packet (encode then writes the canonical layout). */
  layout?: DhcpWireLayout
}

function fieldText(raw: Buffer): string {
  const nul = raw.indexOf(0)
  return raw.toString('latin1', 0, nul === -1 ? raw.length : nul)
}

/** Writes `text` as a C string into the zeroed field of `size` bytes at `offset` of `out`. */
function writeTextField(text: string, size: number, name: string, out: Buffer, offset: number): void {
  const length = Buffer.byteLength(text, 'latin1')
  // Firmware treats these as C strings: keep room for the terminating NUL.
  if (length > size - 1) {
    throw new DhcpError('ERR_DHCP_ENCODE', `DHCP ${name} has ${length} bytes, at most ${size - 1} fit`)
  }
  out.write(text, offset, length, 'latin1')
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function formatHex(b: Buffer): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += (i === 0 ? '' : ':') + (HEX_BYTE[b[i] as number] as string)
  return s
}

/** True when every byte of `b` from `from` on is zero. */
function zeroFrom(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

/**
 * True when writeTextField(fieldText(raw)) would give `raw` back, i.e. the readable value is enough to re-encode the field:
 * a NUL within the field (room for the C string's terminator) and nothing but zeros after it.
 */
function textFieldCanonical(raw: Buffer): boolean {
  const nul = raw.indexOf(0)
  return nul !== -1 && zeroFrom(raw, nul)
}

/** A hex digit's value, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48 // 0-9
  if (c >= 97 && c <= 102) return c - 87 // a-f
  if (c >= 65 && c <= 70) return c - 55 // A-F
  return -1
}

/** Writes colon hex `chaddr` (at most 16 bytes) into the zeroed 16-byte field at `offset` of `out`. */
function writeChaddr(chaddr: string, out: Buffer, offset: number): void {
  if (chaddr === '') return
  const bytes = (chaddr.length + 1) / 3
  let ok = Number.isInteger(bytes) && bytes <= 16
  for (let i = 0; ok && i < bytes; i++) {
    const hi = hexDigit(chaddr.charCodeAt(3 * i))
    const lo = hexDigit(chaddr.charCodeAt(3 * i + 1))
    ok = hi >= 0 && lo >= 0 && (i === bytes - 1 || chaddr.charCodeAt(3 * i + 2) === 58) // ':'
    out[offset + i] = hi * 16 + lo
  }
  if (!ok) throw new DhcpError('ERR_DHCP_ENCODE', `DHCP chaddr ${JSON.stringify(chaddr)} is not colon hex of at most 16 bytes`)
}

/** Writes a dotted quad into the zeroed 4 bytes at `offset` of `out`; throws ERR_DHCP_ENCODE for anything else. */
function writeIPv4(ip: string, out: Buffer, offset: number): void {
  if (ip === '0.0.0.0') return // most address fields of most replies
  const n = ipToInt(ip)
  if (n === undefined) throw new DhcpError('ERR_DHCP_ENCODE', `not an IPv4 address: ${JSON.stringify(ip)}`)
  out.writeUInt32BE(n, offset)
}

/**
 * A BOOTREPLY to `request` (RFC 2131 section 4.3.1, table 3): xid, flags, giaddr and chaddr copied, addresses and
 * names empty unless `fields` sets them. Every reply pxebox builds (proxy, authoritative, NAK) starts here.
 */
export function replyTo(request: DhcpPacket, fields: Partial<Omit<DhcpPacket, 'op' | 'layout'>> & Pick<DhcpPacket, 'options'>): DhcpPacket {
  return {
    op: 2,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags: request.flags,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: '',
    file: '',
    ...fields,
  }
}

/** Decodes one DHCP message. Throws DhcpError (and nothing else) for malformed input. */
export function decode(buf: Buffer): DhcpPacket {
  if (buf.length < OPTIONS_OFFSET) {
    throw new DhcpError(
      'ERR_DHCP_TRUNCATED',
      `DHCP packet is ${buf.length} bytes, the BOOTP header and magic cookie need ${OPTIONS_OFFSET}`,
    )
  }
  const cookie = buf.readUInt32BE(BOOTP_HEADER_LENGTH)
  if (cookie !== MAGIC_COOKIE) {
    throw new DhcpError(
      'ERR_DHCP_BAD_COOKIE',
      `DHCP magic cookie is 0x${cookie.toString(16).padStart(8, '0')}, expected 0x63825363`,
    )
  }
  // One copy of the whole message, which the decoded packet owns: option values are views into it (decodeOptionArea),
  // so later changes to the caller's buffer cannot reach the packet, at the cost of one allocation, not one per option.
  buf = Buffer.from(buf)
  const hlen = buf[2] as number
  const chaddrRaw = buf.subarray(28, 44)
  const snameRaw = buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH)
  const fileRaw = buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LENGTH)

  const options: DhcpOption[] = []
  const mainLayout = decodeOptionArea(buf.subarray(OPTIONS_OFFSET), options)
  const packet: DhcpPacket = {
    op: buf[0] as number,
    htype: buf[1] as number,
    hlen,
    hops: buf[3] as number,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: formatIPv4(buf, 12),
    yiaddr: formatIPv4(buf, 16),
    siaddr: formatIPv4(buf, 20),
    giaddr: formatIPv4(buf, 24),
    chaddr: formatHex(chaddrRaw.subarray(0, Math.min(hlen, 16))),
    sname: '',
    file: '',
    options,
  }
  const layout: DhcpWireLayout = { optionCount: 0, options: mainLayout }

  // RFC 2132 9.3: option 52 may only appear in the options field; read file first, then sname.
  const over = overload({ options })
  if (over === 1 || over === 3) layout.file = decodeOptionArea(fileRaw, options, ' in the file field')
  else packet.file = fieldText(fileRaw)
  if (over === 2 || over === 3) layout.sname = decodeOptionArea(snameRaw, options, ' in the sname field')
  else packet.sname = fieldText(snameRaw)

  // chaddrField(chaddr) reproduces the first min(hlen, 16) bytes and zeros after them.
  if (!zeroFrom(chaddrRaw, Math.min(hlen, 16))) layout.chaddrRaw = Buffer.from(chaddrRaw)
  if (layout.sname === undefined && !textFieldCanonical(snameRaw)) layout.snameRaw = Buffer.from(snameRaw)
  if (layout.file === undefined && !textFieldCanonical(fileRaw)) layout.fileRaw = Buffer.from(fileRaw)
  layout.optionCount = options.length
  checkTypedOptions(packet)
  packet.layout = layout
  return packet
}

/** The decoded layout, if the packet still matches it (same option count, areas still fit their fields). */
function usableLayout(p: DhcpPacket): DhcpWireLayout | undefined {
  const l = p.layout
  if (l === undefined || l.optionCount !== p.options.length) return undefined
  if (l.file !== undefined && (p.file !== '' || optionAreaLength(p.options, l.file) !== FILE_LENGTH)) return undefined
  if (l.sname !== undefined && (p.sname !== '' || optionAreaLength(p.options, l.sname) !== SNAME_LENGTH)) return undefined
  return l
}

// Zero bytes that canonical layouts copy as their padding (read only; never handed out with a decoded packet).
const PADDING = Buffer.alloc(MIN_BOOTP_LENGTH - OPTIONS_OFFSET)
const NO_PADDING = PADDING.subarray(0, 0)

/** The canonical layout for a built packet: all options in the options field, END, zero padding to 300 bytes. */
function canonicalLayout(p: DhcpPacket): DhcpWireLayout {
  if (p.options.some((o) => o.code === DhcpOptionCode.OVERLOAD)) {
    throw new DhcpError('ERR_DHCP_ENCODE', 'DHCP option 52 (overload) can only be re-encoded from a decoded layout')
  }
  const options: OptionAreaLayout = { tokens: p.options.map((_, i) => i), end: true, tail: NO_PADDING }
  const size = OPTIONS_OFFSET + optionAreaLength(p.options, options)
  if (size < MIN_BOOTP_LENGTH) options.tail = PADDING.subarray(0, MIN_BOOTP_LENGTH - size)
  return { optionCount: p.options.length, options }
}

function u(n: number, bits: 8 | 16 | 32, name: string): number {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** bits) {
    throw new DhcpError('ERR_DHCP_ENCODE', `DHCP ${name} ${n} does not fit ${bits} bits`)
  }
  return n
}

/** Size in bytes `encode(p)` will produce. */
export function encodingLength(p: DhcpPacket): number {
  const l = usableLayout(p) ?? canonicalLayout(p)
  return OPTIONS_OFFSET + optionAreaLength(p.options, l.options)
}

/**
 * Encodes a packet. A packet fresh from decode (and not restructured since) comes out byte-identical; a built one
 * gets the canonical layout. Throws DhcpError('ERR_DHCP_ENCODE') for values that cannot be encoded.
 */
export function encode(p: DhcpPacket): Buffer {
  const l = usableLayout(p) ?? canonicalLayout(p)
  const out = Buffer.alloc(OPTIONS_OFFSET + optionAreaLength(p.options, l.options))
  out[0] = u(p.op, 8, 'op')
  out[1] = u(p.htype, 8, 'htype')
  out[2] = u(p.hlen, 8, 'hlen')
  out[3] = u(p.hops, 8, 'hops')
  out.writeUInt32BE(u(p.xid, 32, 'xid'), 4)
  out.writeUInt16BE(u(p.secs, 16, 'secs'), 8)
  out.writeUInt16BE(u(p.flags, 16, 'flags'), 10)
  writeIPv4(p.ciaddr, out, 12)
  writeIPv4(p.yiaddr, out, 16)
  writeIPv4(p.siaddr, out, 20)
  writeIPv4(p.giaddr, out, 24)
  writeChaddr(p.chaddr, out, 28)
  if (l.chaddrRaw !== undefined && formatHex(l.chaddrRaw.subarray(0, Math.min(p.hlen, 16))) === p.chaddr) l.chaddrRaw.copy(out, 28)

  if (l.sname !== undefined) writeOptionArea(p.options, l.sname, out, SNAME_OFFSET)
  else if (l.snameRaw !== undefined && fieldText(l.snameRaw) === p.sname) l.snameRaw.copy(out, SNAME_OFFSET)
  else writeTextField(p.sname, SNAME_LENGTH, 'sname', out, SNAME_OFFSET)
  if (l.file !== undefined) writeOptionArea(p.options, l.file, out, FILE_OFFSET)
  else if (l.fileRaw !== undefined && fieldText(l.fileRaw) === p.file) l.fileRaw.copy(out, FILE_OFFSET)
  else writeTextField(p.file, FILE_LENGTH, 'file', out, FILE_OFFSET)

  out.writeUInt32BE(MAGIC_COOKIE, BOOTP_HEADER_LENGTH)
  writeOptionArea(p.options, l.options, out, OPTIONS_OFFSET)
  return out
}

/** The client's MAC (lowercase, colons) when chaddr is an Ethernet address, else undefined. */
export function macAddress(p: Pick<DhcpPacket, 'htype' | 'hlen' | 'chaddr'>): string | undefined {
  return p.htype === 1 && p.hlen === 6 ? p.chaddr : undefined
}
