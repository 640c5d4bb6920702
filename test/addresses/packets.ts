/**
 * Crafted DHCP packets for tracking and authoritative-mode tests and the DHCP bench: clients with any chaddr,
 * option 97 UUID, requested IP or server id, and server replies, built with the codec.
 */
import { DhcpMessageType, DhcpOptionCode, encode, parseIPv4, textValue, u8Value, type DhcpOption, type DhcpPacket } from '../../src/dhcp/index.js'

/** What a crafted client packet carries. */
export interface ClientPacketSpec {
  type: number
  mac: string
  xid?: number
  requested?: string
  server?: string
  ciaddr?: string
  /** 16 bytes as hex or 8-4-4-4-12. */
  uuid?: string
  /** Option 60; PXE clients also get option 93 (arch 7, UEFI x64) unless `arch` says otherwise. */
  vendorClass?: string
  arch?: number
  hostname?: string
  broadcast?: boolean
}

/** A client BOOTREQUEST. */
export function clientPacket(s: ClientPacketSpec): DhcpPacket {
  const options: DhcpOption[] = [{ code: DhcpOptionCode.MESSAGE_TYPE, data: u8Value(s.type) }]
  if (s.requested !== undefined) options.push({ code: DhcpOptionCode.REQUESTED_IP, data: parseIPv4(s.requested) })
  if (s.server !== undefined) options.push({ code: DhcpOptionCode.SERVER_ID, data: parseIPv4(s.server) })
  if (s.hostname !== undefined) options.push({ code: DhcpOptionCode.HOST_NAME, data: textValue(s.hostname) })
  if (s.vendorClass !== undefined) {
    options.push({ code: DhcpOptionCode.VENDOR_CLASS, data: textValue(s.vendorClass) })
    const arch = s.arch ?? 7
    options.push({ code: DhcpOptionCode.CLIENT_ARCH, data: Buffer.from([arch >> 8, arch & 255]) })
  }
  if (s.uuid !== undefined) options.push({ code: DhcpOptionCode.CLIENT_UUID, data: Buffer.concat([Buffer.from([0]), Buffer.from(s.uuid.replace(/-/g, ''), 'hex')]) })
  options.push({ code: DhcpOptionCode.PARAMETER_LIST, data: Buffer.from([1, 3, 6, 12, 15, 51, 54, 66, 67]) })
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: s.xid ?? Math.floor(Math.random() * 0xffffffff),
    secs: 0,
    flags: s.broadcast === false ? 0 : 0x8000,
    ciaddr: s.ciaddr ?? '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: s.mac,
    sname: '',
    file: '',
    options,
  }
}

/** A server BOOTREPLY (OFFER/ACK) handing `yiaddr` to `mac`. */
export function serverReply(s: { type: number; mac: string; yiaddr: string; server: string; leaseSeconds?: number; xid?: number }): DhcpPacket {
  const options: DhcpOption[] = [
    { code: DhcpOptionCode.MESSAGE_TYPE, data: u8Value(s.type) },
    { code: DhcpOptionCode.SERVER_ID, data: parseIPv4(s.server) },
  ]
  if (s.leaseSeconds !== undefined) {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(s.leaseSeconds)
    options.push({ code: DhcpOptionCode.LEASE_TIME, data: b })
  }
  return { ...clientPacket({ type: s.type, mac: s.mac, xid: s.xid ?? 1 }), op: 2, yiaddr: s.yiaddr, siaddr: s.server, options }
}

/** Encoded, for sockets. */
export const bytes = (p: DhcpPacket): Buffer => encode(p)

/** A MAC from a number: 02:00:00:xx:xx:xx (locally administered). */
export function macOf(n: number, prefix = '02:00:00'): string {
  return `${prefix}:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`
}

export { DhcpMessageType }
