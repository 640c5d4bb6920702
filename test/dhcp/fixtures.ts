/**
 * The real capture, loaded once per test file: frames by number (1-based, as in tshark and the fixture README).
 */
import { fileURLToPath } from 'node:url'
import { readPcap, type PcapUdpPacket } from '../helpers/pcap.js'

/** Path of the capture inside the repo. */
export const CAPTURE = fileURLToPath(
  new URL('../fixtures/dhcp/ovmf-uefi-and-ipxe-bios-with-dnsmasq-proxy.pcap', import.meta.url),
)

/** Every UDP datagram of the capture. */
export function captureFrames(): PcapUdpPacket[] {
  return readPcap(CAPTURE)
}

/** One frame's UDP datagram; throws if the capture lacks it. */
export function frame(frames: PcapUdpPacket[], n: number): PcapUdpPacket {
  const f = frames.find((x) => x.frame === n)
  if (f === undefined) throw new Error(`capture has no frame ${n}`)
  return f
}

/** Frames that are client requests (to port 67 or 4011). */
export const REQUEST_FRAMES = [1, 4, 6, 8, 11, 13, 15, 17, 19, 22, 24]
