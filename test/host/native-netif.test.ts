// native/netif.c against this namespace's loopback: the interface list, name -> index, and setsockopt (the folded
// `sockopt` dependency, issue 14 item 6), each failure a Node-style system error from errors.c. Needs no namespace of
// its own, so scripts/test-native-asan.sh runs it under ASan with the other files that drive the addon.
import t from 'tap'
import { createSocket } from 'node:dgram'
import { closeSync, openSync } from 'node:fs'
import { constants } from 'node:os'
import { join } from 'node:path'
import { bindToInterfaceWith, SO_BINDTOIFINDEX, SOL_SOCKET } from '../../src/dhcp/pin.js'
import { loadNative } from '../../src/host/native.js'

const native = loadNative()
const skip = native.addon ? false : `native addon: ${native.reason}`

t.test('interfaces() lists lo with its index, 127.0.0.1/8 and its flags', { skip }, async (t) => {
  const addon = native.addon!
  const lo = addon.interfaces().find((i) => i.name === 'lo')
  t.match(lo, { index: addon.nameToIndex('lo'), loopback: true, up: true, ipv4: [{ address: '127.0.0.1', prefix: 8 }] })
  t.ok(lo!.mtu > 0, `lo has an MTU (${lo?.mtu})`)
})

t.test('nameToIndex: no such interface is ENODEV; a name longer than IFNAMSIZ is refused before the call', { skip }, async (t) => {
  const addon = native.addon!
  t.throws(() => addon.nameToIndex('pxbx-none0'), { code: 'ENODEV', errno: constants.errno.ENODEV, syscall: 'if_nametoindex' })
  t.throws(() => addon.nameToIndex('a-name-of-20-bytes..'), TypeError)
})

t.test('setsockoptInt: pins a bound UDP socket to lo (SO_BINDTOIFINDEX); a file or a closed descriptor is refused', { skip }, async (t) => {
  const addon = native.addon!
  const socket = createSocket('udp4')
  t.teardown(() => socket.close())
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  await t.resolves(bindToInterfaceWith(native)(socket, addon.nameToIndex('lo')))
  const file = openSync(join(t.testdir({ f: 'x' }), 'f'), 'r')
  t.teardown(() => closeSync(file))
  t.throws(() => addon.setsockoptInt(file, SOL_SOCKET, SO_BINDTOIFINDEX, 1), { code: 'ENOTSOCK', errno: constants.errno.ENOTSOCK, syscall: 'setsockopt' })
  t.throws(() => addon.setsockoptInt(1_000_000, SOL_SOCKET, SO_BINDTOIFINDEX, 1), { code: 'EBADF', errno: constants.errno.EBADF, syscall: 'setsockopt' })
  t.throws(() => addon.setsockoptInt(3, SOL_SOCKET, SO_BINDTOIFINDEX, '1' as unknown as number), TypeError, 'a non-number is a TypeError, not a crash')
})
