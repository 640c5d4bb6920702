import t from 'tap'
import { createSocket } from 'node:dgram'
import { readSocketDrops, socketDrops } from '../../src/syslog/kernel-drops.js'

// Two sockets as /proc/net/udp lists them on a little-endian machine: 127.0.0.1:514 with 1234 drops, 0.0.0.0:68.
const proc = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
  '  105: 0100007F:0202 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81234 2 0000000000000000 1234',
  '  200: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81235 2 0000000000000000 0',
].join('\n')

t.test('the drops column of the socket bound to that address and port', async (t) => {
  t.equal(socketDrops(proc, '127.0.0.1', 514, true), 1234)
  t.equal(socketDrops(proc, '0.0.0.0', 68, true), 0)
  t.equal(socketDrops(proc, '127.0.0.2', 514, true), undefined, 'another address')
  t.equal(socketDrops(proc, '127.0.0.1', 515, true), undefined, 'another port')
  t.equal(socketDrops(proc, '127.0.0.1', 514, false), undefined, 'big-endian hosts write the address in dotted order')
  t.equal(socketDrops(proc, '::', 514, true), 1234, 'IPv6: by port')
  t.equal(socketDrops('header only', '127.0.0.1', 514), undefined)
})

t.test('a real bound socket is found in /proc with no drops', async (t) => {
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r))
  t.teardown(() => s.close())
  t.equal(readSocketDrops('127.0.0.1', s.address().port), 0)
})
