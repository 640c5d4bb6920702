/**
 * A minimal classic-pcap reader for test fixtures: Ethernet (optionally one 802.1Q tag) / IPv4 / UDP only.
 * Enough to replay captured DHCP traffic; anything else in the file is skipped.
 */
import { readFileSync } from 'node:fs'

/** One UDP datagram from a capture. */
export interface PcapUdpPacket {
  /** 1-based frame number, as tshark/wireshark show it. */
  frame: number
  /** Capture time in seconds (fractional). */
  time: number
  srcIp: string
  dstIp: string
  srcPort: number
  dstPort: number
  payload: Buffer
}

const LINKTYPE_ETHERNET = 1

function ip(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
}

/** Parses a classic pcap buffer (either byte order, micro- or nanosecond timestamps) into its UDP datagrams. */
export function parsePcap(buf: Buffer): PcapUdpPacket[] {
  const magic = buf.readUInt32LE(0)
  let le: boolean
  let nano: boolean
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) {
    le = true
    nano = magic === 0xa1b23c4d
  } else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) {
    le = false
    nano = magic === 0x4d3cb2a1
  } else {
    throw new Error(`not a classic pcap file (magic 0x${magic.toString(16)})`)
  }
  const u32 = (off: number): number => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off))
  const linktype = u32(20)
  if (linktype !== LINKTYPE_ETHERNET) throw new Error(`pcap link type ${linktype} is not Ethernet`)
  const out: PcapUdpPacket[] = []
  let pos = 24
  let frame = 0
  while (pos + 16 <= buf.length) {
    frame++
    const time = u32(pos) + u32(pos + 4) / (nano ? 1e9 : 1e6)
    const caplen = u32(pos + 8)
    const data = buf.subarray(pos + 16, pos + 16 + caplen)
    pos += 16 + caplen
    let off = 12
    let ethertype = data.readUInt16BE(off)
    if (ethertype === 0x8100) {
      off += 4
      ethertype = data.readUInt16BE(off)
    }
    off += 2
    if (ethertype !== 0x0800) continue
    const ihl = ((data[off] as number) & 0x0f) * 4
    const totalLength = data.readUInt16BE(off + 2)
    if (data[off + 9] !== 17) continue
    const udp = off + ihl
    const udpLength = data.readUInt16BE(udp + 4)
    const end = Math.min(udp + udpLength, off + totalLength, data.length)
    out.push({
      frame,
      time,
      srcIp: ip(data, off + 12),
      dstIp: ip(data, off + 16),
      srcPort: data.readUInt16BE(udp),
      dstPort: data.readUInt16BE(udp + 2),
      payload: Buffer.from(data.subarray(udp + 8, end)),
    })
  }
  return out
}

/** Reads and parses a pcap file. */
export function readPcap(path: string): PcapUdpPacket[] {
  return parsePcap(readFileSync(path))
}
