/**
 * TFTP packet codec (RFC 1350, option extension RFC 2347): pure functions over plain objects.
 *
 * Strings are decoded as latin1 so that decode -> encode is byte-exact for any input; callers that need UTF-8 file
 * names re-interpret the bytes themselves.
 */

/** Opcodes, RFC 1350 section 5 and RFC 2347 (OACK). */
export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const

/** Error codes, RFC 1350 appendix and RFC 2347 (8). */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const

/** One option as sent on the wire: name and value, original spelling and order kept. */
export type TftpOption = [name: string, value: string]

/** A read or write request. */
export interface RequestPacket {
  op: 'rrq' | 'wrq'
  filename: string
  mode: string
  options: TftpOption[]
}
/** A DATA block; `data` is a view into the decoded buffer. */
export interface DataPacket {
  op: 'data'
  block: number
  data: Buffer
}
/** An acknowledgement of one block (0 acknowledges an OACK). */
export interface AckPacket {
  op: 'ack'
  block: number
}
/** An ERROR with its code and message. */
export interface ErrorPacket {
  op: 'error'
  code: number
  message: string
}
/** An option acknowledgement, RFC 2347. */
export interface OackPacket {
  op: 'oack'
  options: TftpOption[]
}
/** Any TFTP packet. */
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket

/** The one error decode() throws; `code` is stable, the message names the numbers. */
export class TftpPacketError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'TftpPacketError'
    this.code = code
  }
}

/** Size of the DATA header (opcode + block number). */
export const DATA_HEADER = 4

/** Splits NUL-terminated strings from `start`; a final unterminated string is an error. */
function readStrings(buf: Buffer, start: number, what: string): string[] {
  const out: string[] = []
  let pos = start
  while (pos < buf.length) {
    const end = buf.indexOf(0, pos)
    if (end === -1) {
      throw new TftpPacketError('ERR_TFTP_UNTERMINATED', `TFTP ${what} string at byte ${pos} is not NUL-terminated`)
    }
    out.push(buf.toString('latin1', pos, end))
    pos = end + 1
  }
  return out
}

/** Pairs option strings; trailing empty strings are NUL padding that some PXE ROMs send, and are ignored. */
function pairOptions(strings: string[], what: string): TftpOption[] {
  let n = strings.length
  for (;;) {
    if (n % 2 === 1 && strings[n - 1] === '') n--
    else if (n >= 2 && strings[n - 1] === '' && strings[n - 2] === '') n -= 2
    else break
  }
  if (n % 2 !== 0) {
    throw new TftpPacketError('ERR_TFTP_OPTION', `TFTP ${what} option '${strings[n - 1]}' has no value`)
  }
  const options: TftpOption[] = []
  for (let i = 0; i < n; i += 2) {
    const name = strings[i] as string
    if (name === '') throw new TftpPacketError('ERR_TFTP_OPTION', `TFTP ${what} option ${i / 2 + 1} has an empty name`)
    options.push([name, strings[i + 1] as string])
  }
  return options
}

/** Decodes one TFTP packet. Throws only TftpPacketError. */
export function decode(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpPacketError('ERR_TFTP_SHORT', `TFTP packet is ${buf.length} bytes, the shortest is 2`)
  const opcode = buf.readUInt16BE(0)
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const what = opcode === Opcode.RRQ ? 'RRQ' : 'WRQ'
      const strings = readStrings(buf, 2, what)
      if (strings.length < 2) {
        throw new TftpPacketError('ERR_TFTP_SHORT', `TFTP ${what} has ${strings.length} strings, needs filename and mode`)
      }
      return {
        op: opcode === Opcode.RRQ ? 'rrq' : 'wrq',
        filename: strings[0] as string,
        mode: strings[1] as string,
        options: pairOptions(strings.slice(2), what),
      }
    }
    case Opcode.DATA:
      if (buf.length < 4) throw new TftpPacketError('ERR_TFTP_SHORT', `TFTP DATA is ${buf.length} bytes, the shortest is 4`)
      return { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) }
    case Opcode.ACK:
      if (buf.length !== 4) throw new TftpPacketError('ERR_TFTP_LENGTH', `TFTP ACK is ${buf.length} bytes, must be 4`)
      return { op: 'ack', block: buf.readUInt16BE(2) }
    case Opcode.ERROR: {
      if (buf.length < 4) throw new TftpPacketError('ERR_TFTP_SHORT', `TFTP ERROR is ${buf.length} bytes, the shortest is 4`)
      // Some firmware omits the message's NUL; the code is what matters, so take the message leniently.
      const end = buf.indexOf(0, 4)
      return { op: 'error', code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, end === -1 ? buf.length : end) }
    }
    case Opcode.OACK:
      return { op: 'oack', options: pairOptions(readStrings(buf, 2, 'OACK'), 'OACK') }
    default:
      throw new TftpPacketError('ERR_TFTP_OPCODE', `TFTP opcode ${opcode} is unknown`)
  }
}

function stringsLength(strings: string[]): number {
  let n = 0
  for (const s of strings) n += Buffer.byteLength(s, 'latin1') + 1
  return n
}

function writeStrings(buf: Buffer, pos: number, strings: string[]): number {
  for (const s of strings) {
    pos += buf.write(s, pos, 'latin1')
    buf[pos++] = 0
  }
  return pos
}

function optionStrings(options: TftpOption[]): string[] {
  return options.flatMap(([name, value]) => [name, value])
}

/** Number of bytes encode(packet) produces. */
export function encodingLength(packet: TftpPacket): number {
  switch (packet.op) {
    case 'rrq':
    case 'wrq':
      return 2 + stringsLength([packet.filename, packet.mode, ...optionStrings(packet.options)])
    case 'data':
      return 4 + packet.data.length
    case 'ack':
      return 4
    case 'error':
      return 4 + stringsLength([packet.message])
    case 'oack':
      return 2 + stringsLength(optionStrings(packet.options))
  }
}

/** Encodes one TFTP packet into a fresh buffer. */
export function encode(packet: TftpPacket): Buffer {
  const buf = Buffer.allocUnsafe(encodingLength(packet))
  switch (packet.op) {
    case 'rrq':
    case 'wrq':
      buf.writeUInt16BE(packet.op === 'rrq' ? Opcode.RRQ : Opcode.WRQ, 0)
      writeStrings(buf, 2, [packet.filename, packet.mode, ...optionStrings(packet.options)])
      break
    case 'data':
      writeDataHeader(buf, packet.block)
      packet.data.copy(buf, 4)
      break
    case 'ack':
      buf.writeUInt16BE(Opcode.ACK, 0)
      buf.writeUInt16BE(packet.block & 0xffff, 2)
      break
    case 'error':
      buf.writeUInt16BE(Opcode.ERROR, 0)
      buf.writeUInt16BE(packet.code, 2)
      writeStrings(buf, 4, [packet.message])
      break
    case 'oack':
      buf.writeUInt16BE(Opcode.OACK, 0)
      writeStrings(buf, 2, optionStrings(packet.options))
      break
  }
  return buf
}

/** Writes a DATA header in place, so senders can reuse preallocated packet buffers. Block wraps 65535 -> 0. */
export function writeDataHeader(buf: Buffer, block: number): void {
  buf[0] = 0
  buf[1] = Opcode.DATA
  buf.writeUInt16BE(block & 0xffff, 2)
}

/** Shorthand for an ERROR packet. */
export function errorPacket(code: number, message: string): Buffer {
  return encode({ op: 'error', code, message })
}

/** Reads the opcode without decoding, for the per-packet fast path (0 when the buffer is too short). */
export function peekOpcode(buf: Buffer): number {
  return buf.length >= 2 ? buf.readUInt16BE(0) : 0
}
