/**
 * Real firmware's DHCP packets for the benches' simulated clients: OVMF's DISCOVER and REQUEST from the fixture
 * capture, and copies of them with another client's chaddr, xid and option 97 UUID. Also the capture's proxyDHCP
 * boot-server REQUEST to 4011 and the site server's OFFER, for bench/abuse's valid client and spoofed replies.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DhcpOptionCode, DhcpMessageType, decode, messageType, type DhcpPacket } from '../../src/dhcp/index.js'
import { parsePcap } from '../../test/helpers/pcap.js'

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/dhcp/ovmf-uefi-and-ipxe-bios-with-dnsmasq-proxy.pcap', import.meta.url))

/** The fixture's packets, decoded, layout dropped so edits encode. */
export interface OvmfTemplates {
  /** Frame 1: OVMF's DISCOVER, broadcast from 0.0.0.0:68. */
  discover: DhcpPacket
  /** Frame 4: OVMF's REQUEST to the site server (options 50 and 54). */
  request: DhcpPacket
  /** Frame 6: OVMF's REQUEST to the proxyDHCP boot server on 4011, from its leased address (ciaddr set). */
  pxeRequest: DhcpPacket
  /** Frame 2: the site server's (dnsmasq's) OFFER. */
  siteOffer: DhcpPacket
  /** Frame 8: the chainloaded snponly.efi iPXE's DISCOVER (option 77 `iPXE`, option 175). */
  ipxeDiscover: DhcpPacket
  /** Frame 13: that iPXE's ProxyDHCP REQUEST to 4011, from its leased address (ciaddr set). */
  ipxeProxyRequest: DhcpPacket
}

/** OVMF's and the site server's packets from the fixture capture (see OvmfTemplates). */
export function ovmfTemplates(): OvmfTemplates {
  const frames = parsePcap(readFileSync(FIXTURE))
  const pick = (frame: number, type: number): DhcpPacket => {
    const f = frames.find((x) => x.frame === frame)
    if (f === undefined) throw new Error(`fixture has no frame ${frame}`)
    const p = decode(f.payload)
    if (messageType(p) !== type) throw new Error(`fixture frame ${frame} is not DHCP message type ${type}`)
    delete p.layout
    return p
  }
  return {
    discover: pick(1, DhcpMessageType.DISCOVER),
    request: pick(4, DhcpMessageType.REQUEST),
    pxeRequest: pick(6, DhcpMessageType.REQUEST),
    siteOffer: pick(2, DhcpMessageType.OFFER),
    ipxeDiscover: pick(8, DhcpMessageType.DISCOVER),
    ipxeProxyRequest: pick(13, DhcpMessageType.REQUEST),
  }
}

/** The template for one client: its chaddr, xid, and a UUID (option 97: type 0 + 16 bytes) ending in its MAC. */
export function forClient(t: DhcpPacket, mac: string, xid: number, edits: Record<number, Buffer> = {}): DhcpPacket {
  const macBytes = Buffer.from(mac.replace(/:/g, ''), 'hex')
  const options = t.options.map((o) => {
    if (edits[o.code] !== undefined) return { code: o.code, data: edits[o.code] as Buffer }
    if (o.code === DhcpOptionCode.CLIENT_UUID && o.data.length === 17) {
      const data = Buffer.from(o.data)
      macBytes.copy(data, 11)
      return { code: o.code, data }
    }
    return o
  })
  return { ...t, chaddr: mac, xid, options }
}
