/**
 * Authoritative-mode replies (RFC 2131 section 4.3): OFFER/ACK with an address and lease options, NAK. Pure packet
 * building; the PXE part (boot file, option 60/97/43/67, siaddr, file) comes from the proxy policy's
 * `decidePxeBoot`, so a PXE client gets exactly the boot answer proxy mode would give, plus an address.
 *
 * For UEFI clients the file is already in the offer (we are the DHCP server, so there is no separate proxy to ask);
 * EDK2 may still treat an offer with PXEClient and no option 43 as a BINL offer and ask port 4011, which the same
 * server keeps answering (pxe-protocol.md "proxyDHCP").
 */
import { DhcpMessageType, DhcpOptionCode, parseIPv4, replyTo, textValue, u8Value, type DhcpOption, type DhcpPacket } from '../dhcp/index.js'
import type { PxeBoot } from './proxy-policy.js'

/** RFC 2132 option codes used here that the codec does not name. */
const OPT_DNS = 6 // RFC 2132 3.8 domain name servers
const OPT_LOG_SERVER = 7 // RFC 2132 3.9 log servers (syslog, UDP 514 implied)
const OPT_RENEWAL = 58 // RFC 2132 9.11 T1
const OPT_REBINDING = 59 // RFC 2132 9.12 T2

/** The network facts every lease carries. */
export interface LeaseParameters {
  /** Our address: option 54. */
  serverAddress: string
  leaseSeconds: number
  netmask: string
  router?: string
  dns: readonly string[]
  /**
   * Where clients should send syslog (option 7), when pxebox receives it (config `syslog:` on port 514): installers
   * and busybox-based initramfs tools that honour option 7 then log to pxebox without a kernel argument.
   */
  logServer?: string
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.floor(n))))
  return b
}

/**
 * An OFFER (to a DISCOVER) or ACK (to a REQUEST) of `yiaddr`. Options in the order RFC 2131 4.3.1 lists them, then
 * the PXE options when `boot` is given; T1/T2 at 50% and 87.5% (RFC 2131 4.4.5).
 */
export function leaseReply(
  request: DhcpPacket,
  type: typeof DhcpMessageType.OFFER | typeof DhcpMessageType.ACK,
  yiaddr: string,
  p: LeaseParameters,
  boot?: PxeBoot,
  hostname?: string,
): DhcpPacket {
  const options: DhcpOption[] = [
    { code: DhcpOptionCode.MESSAGE_TYPE, data: u8Value(type) },
    { code: DhcpOptionCode.SERVER_ID, data: parseIPv4(p.serverAddress) },
    { code: DhcpOptionCode.LEASE_TIME, data: u32(p.leaseSeconds) },
    { code: OPT_RENEWAL, data: u32(p.leaseSeconds * 0.5) },
    { code: OPT_REBINDING, data: u32(p.leaseSeconds * 0.875) },
    { code: DhcpOptionCode.SUBNET_MASK, data: parseIPv4(p.netmask) },
  ]
  if (p.router !== undefined) options.push({ code: DhcpOptionCode.ROUTER, data: parseIPv4(p.router) })
  if (p.dns.length > 0) options.push({ code: OPT_DNS, data: Buffer.concat(p.dns.map(parseIPv4)) })
  if (p.logServer !== undefined) options.push({ code: OPT_LOG_SERVER, data: parseIPv4(p.logServer) })
  if (hostname !== undefined) options.push({ code: DhcpOptionCode.HOST_NAME, data: textValue(hostname) })
  if (boot !== undefined) options.push(...boot.options)
  return replyTo(request, {
    ciaddr: type === DhcpMessageType.ACK ? request.ciaddr : '0.0.0.0',
    yiaddr,
    siaddr: boot?.siaddr ?? '0.0.0.0',
    file: boot?.file ?? '',
    options,
  })
}

/** A NAK (RFC 2131 4.3.2: the client's address is wrong for this network or taken); always broadcast. */
export function nakReply(request: DhcpPacket, serverAddress: string, message: string): DhcpPacket {
  return replyTo(request, {
    flags: request.flags | 0x8000,
    options: [
      { code: DhcpOptionCode.MESSAGE_TYPE, data: u8Value(DhcpMessageType.NAK) },
      { code: DhcpOptionCode.SERVER_ID, data: parseIPv4(serverAddress) },
      { code: 56, data: textValue(message) }, // RFC 2132 9.9 message
    ],
  })
}
