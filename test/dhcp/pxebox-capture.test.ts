/**
 * Golden tests from pxebox's own UEFI boots (test/fixtures/dhcp/pxebox-uefi-paths.pcap, captured on the PXE bridge
 * by the VM tests with PXEBOX_E2E_CAPTURE): OVMF native PXE (frames 1-15), OVMF UEFI HTTP boot (20-29) and OVMF with
 * QEMU's iPXE EFI ROM (34-44); 10.213.42.1 is pxebox, 10.213.42.2 the site's dnsmasq (addresses only).
 * Every one of these replies was accepted by real firmware that went on to boot Linux, so the policy must keep
 * producing them byte for byte.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { decode, encode, clientArchitectures, userClasses, vendorClass, messageType } from '../../src/dhcp/index.js'
import { decideProxyReply, type ProxyContext } from '../../src/boot/proxy-policy.js'
import { readPcap, type PcapUdpPacket } from '../helpers/pcap.js'

const frames = readPcap(fileURLToPath(new URL('../fixtures/dhcp/pxebox-uefi-paths.pcap', import.meta.url)))
const PXEBOX = '10.213.42.1'
const ctx: ProxyContext = {
  serverAddress: PXEBOX,
  httpBaseUrl: 'http://10.213.42.1:8080',
  lookup: () => ({ pxe: true, chainloadIpxe: false }),
  chainloadedRecently: () => false,
}
const byNumber = (n: number): PcapUdpPacket => {
  const f = frames.find((x) => x.frame === n)
  if (!f) throw new Error(`no frame ${n}`)
  return f
}

t.test('every request in the capture re-encodes byte-exact', async (t) => {
  const requests = frames.filter((f) => f.dstPort === 67 || f.dstPort === 4011)
  t.equal(requests.length, 19)
  for (const f of requests) t.same(encode(decode(f.payload)), f.payload, `frame ${f.frame}`)
})

t.test('OVMF native PXE DISCOVER (frame 1) decodes to what EDK2 sends', async (t) => {
  const d = decode(byNumber(1).payload)
  t.match(d, { op: 1, htype: 1, hlen: 6, ciaddr: '0.0.0.0', giaddr: '0.0.0.0' })
  t.equal(messageType(d), 1)
  t.equal(vendorClass(d), 'PXEClient:Arch:00007:UNDI:003000')
  t.same(clientArchitectures(d), [7])
  t.equal(userClasses(d), undefined, 'EDK2 sends no user class')
})

t.test('the policy reproduces every reply pxebox sent, byte for byte', async (t) => {
  const replies = frames.filter((f) => f.srcIp === PXEBOX)
  t.equal(replies.length, 9)
  for (const r of replies) {
    const answer = decode(r.payload)
    // The request is the latest earlier frame from the client with the same xid, on the port the reply came from.
    const request = frames
      .filter((f) => f.frame < r.frame && f.dstPort === r.srcPort && decode(f.payload).xid === answer.xid)
      .at(-1)
    if (!request) throw new Error(`no request for frame ${r.frame}`)
    const decision = decideProxyReply(decode(request.payload), r.srcPort === 4011 ? 'pxe' : 'dhcp', ctx)
    if (decision.action !== 'reply') {
      t.fail(`frame ${request.frame}: ${decision.reason}`)
      continue
    }
    t.same(encode(decision.reply), r.payload, `frame ${r.frame} (answer to ${request.frame}: ${decision.bootFile})`)
  }
})

t.test('what each firmware was told', async (t) => {
  const file = (n: number) => decode(byNumber(n).payload).file
  t.equal(file(2), 'snponly.efi', 'OVMF PXE offer (BINL, no option 43)')
  t.equal(file(10), 'snponly.efi', 'the 4011 ACK')
  t.equal(file(13), 'http://10.213.42.1:8080/boot.ipxe', 'iPXE gets the script, ending the chainload')
  t.equal(file(21), 'http://10.213.42.1:8080/firmware/snponly.efi', 'UEFI HTTP boot gets an http:// URL')
  t.equal(vendorClass(decode(byNumber(21).payload)), 'HTTPClient')
  t.equal(file(35), 'http://10.213.42.1:8080/boot.ipxe', 'QEMU iPXE EFI ROM gets the script directly')
  for (const n of [16, 18, 30, 32]) {
    const d = decideProxyReply(decode(byNumber(n).payload), 'dhcp', ctx)
    t.match(d, { action: 'ignore', pxeClient: false }, `udhcpc frame ${n} ignored`)
  }
})
