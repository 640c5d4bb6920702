/**
 * Authoritative replies (boot/authoritative.ts) on the wire: with pxebox's syslog receiver on, every OFFER and ACK
 * carries option 7 (RFC 2132 3.9, log server) with its address, so installers that honour it log into the machine's
 * record (issue 20); without it, no option 7. The packets go through encode/decode, as a client would read them.
 */
import t from 'tap'
import { DhcpMessageType, decode, encode, type DhcpPacket } from '../../src/dhcp/index.js'
import { leaseReply, type LeaseParameters } from '../../src/boot/authoritative.js'
import { clientPacket } from '../addresses/packets.js'

const params: LeaseParameters = { serverAddress: '10.213.58.1', leaseSeconds: 3600, netmask: '255.255.255.0', router: '10.213.58.254', dns: ['10.213.58.53'] }
const discover = clientPacket({ type: DhcpMessageType.DISCOVER, mac: '52:54:00:e2:3a:01', xid: 0x1234 })
const option = (p: DhcpPacket, code: number): string | undefined => p.options.find((o) => o.code === code)?.data.toString('hex')

t.test('option 7 names the log server in OFFER and ACK when syslog is on', async (t) => {
  for (const type of [DhcpMessageType.OFFER, DhcpMessageType.ACK] as const) {
    const reply = decode(encode(leaseReply(discover, type, '10.213.58.100', { ...params, logServer: '10.213.58.1' })))
    t.equal(option(reply, 7), '0ad53a01', `type ${type}: option 7 = 10.213.58.1`)
    t.equal(reply.options.filter((o) => o.code === 7).length, 1, 'once')
    // The lease options are unchanged beside it.
    t.equal(option(reply, 3), '0ad53afe')
    t.equal(option(reply, 6), '0ad53a35')
  }
})

t.test('no option 7 without a log server (syslog off, or on another port than 514)', async (t) => {
  const reply = decode(encode(leaseReply(discover, DhcpMessageType.OFFER, '10.213.58.100', params)))
  t.equal(option(reply, 7), undefined)
  t.equal(option(reply, 1), 'ffffff00')
})
