/**
 * Real firmware's DHCP packets for the benches' simulated clients: OVMF's DISCOVER and REQUEST from the fixture
 * capture, and copies of them with another client's chaddr, xid and option 97 UUID.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DhcpOptionCode, DhcpMessageType, decode, messageType, type DhcpPacket } from '../../src/dhcp/index.js'
import { parsePcap } from '../../test/helpers/pcap.js'

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/dhcp/ovmf-uefi-and-ipxe-bios-with-dnsmasq-proxy.pcap', import.meta.url))

/** OVMF's DISCOVER and REQUEST from the fixture capture (frames 1 and 4), decoded, layout dropped so edits encode. */
export function ovmfTemplates(): { discover: DhcpPacket; request: DhcpPacket } {
  const frames = parsePcap(readFileSync(FIXTURE))
  const pick = (frame: number, type: number): DhcpPacket => {
    const f = frames.find((x) => x.frame === frame)
    if (f === undefined) throw new Error(`fixture has no frame ${frame}`)
    const p = decode(f.payload)
    if (messageType(p) !== type) throw new Error(`fixture frame ${frame} is not DHCP message type ${type}`)
    delete p.layout
    return p
  }
  return { discover: pick(1, DhcpMessageType.DISCOVER), request: pick(4, DhcpMessageType.REQUEST) }
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
