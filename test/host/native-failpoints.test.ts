// The native addon's failure paths that only a failing N-API call reaches (issue 14 item 6), driven through the
// fault-injection build (native/failpoint.h) that scripts/test-native-asan.sh compiles and runs this file against:
// udpOpen failing part-way gives back its references, async context and descriptor; senderOpen failing part-way
// closes its descriptors and releases its threadsafe callback. What each failure leaves
// behind is observed from JS: async_hooks init/destroy of the addon's async resources, the onPacket function being
// garbage-collected (its reference deleted), and the process's open descriptors.
import t, { type Test } from 'tap'
import { createHook } from 'node:async_hooks'
import { readdirSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { loadNative, type NativeAddon } from '../../src/host/native.js'

const native = loadNative().addon
const skip = native?.failpoints === true ? false : 'needs the fault-injection build of native/ (bash scripts/test-native-asan.sh runs this file against it)'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const openFds = () => readdirSync('/proc/self/fd').length
const turn = () => new Promise((r) => setImmediate(r))

/** Live async resources of the addon by type, from async_hooks: a resource that is never destroyed is a leaked one. */
function trackResources(t: Test, type: string): { created: () => number; live: () => number } {
  const live = new Set<number>()
  let created = 0
  const hook = createHook({
    init: (id, resourceType) => void (resourceType === type && (created++, live.add(id))),
    destroy: (id) => void live.delete(id),
  }).enable()
  t.teardown(() => void hook.disable())
  return { created: () => created, live: () => live.size }
}

/** Runs `fn` with the failpoint `name` armed (native/failpoint.h reads the variable at each call). */
function armed<T>(name: string, fn: () => T): T {
  process.env.PXEBOX_NATIVE_FAILPOINT = name
  try {
    return fn()
  } finally {
    delete process.env.PXEBOX_NATIVE_FAILPOINT
  }
}

/** Collects garbage and lets the loop turn until `done()` or 100 turns have passed (uv close and destroy hooks are async). */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) {
    gc()
    await turn()
  }
}

const udpFailpoints = [
  ['udpOpen:setup', 'buffer, references and async context made, before the poll handle', /could not set up the socket/],
  ['udpOpen:handle', 'the poll handle registered, the JS handle not created', /could not create the handle/],
  ['udpOpen:result', 'the JS handle created, the result array not filled', /could not build the result/],
  ['udpOpen:poll', 'everything built, uv_poll_start failing', /uv_poll_start/],
] as const

for (const [failpoint, where, message] of udpFailpoints) {
  t.test(`udpOpen failing part-way (${failpoint}: ${where}) releases what it set up`, { skip }, async (t) => {
    const addon = native as NativeAddon
    const udp = trackResources(t, 'pxebox:udp')
    // Warm-up: the first udpOpen loads what stays loaded (the 64 KiB buffer pool's first slab, etc.).
    addon.udpClose(addon.udpOpen(false, '127.0.0.1', () => undefined)[0])
    await settle(() => udp.live() === 0)
    const fdsBefore = openFds()
    let collected = false
    const registry = new FinalizationRegistry(() => void (collected = true))
    ;(() => {
      const onPacket = () => undefined
      registry.register(onPacket, 'onPacket')
      t.throws(() => armed(failpoint, () => addon.udpOpen(false, '127.0.0.1', onPacket)), { message })
    })()
    await settle(() => collected && udp.live() === 0 && openFds() === fdsBefore)
    t.ok(udp.created() >= 2, 'the async context was created (the failure came after it)')
    t.equal(udp.live(), 0, 'its async context was destroyed')
    t.ok(collected, 'onPacket was garbage-collected: the reference to it was deleted')
    t.equal(openFds(), fdsBefore, 'the socket was closed')
  })
}

const senderFailpoints = [
  ['senderOpen:callback', 'epoll and eventfd made, the threadsafe callback not', /could not create the sender's callback/],
  ['senderOpen:thread', 'the callback made, the thread not started', /pthread_create/],
] as const

for (const [failpoint, where, message] of senderFailpoints) {
  t.test(`senderOpen failing part-way (${failpoint}: ${where}) releases what it set up`, { skip }, async (t) => {
    const addon = native as NativeAddon
    const callbacks = trackResources(t, 'pxebox:sender')
    const fdsBefore = openFds()
    t.throws(() => armed(failpoint, () => addon.senderOpen(1000)), { message })
    await settle(() => callbacks.live() === 0 && openFds() === fdsBefore)
    t.equal(callbacks.live(), 0, 'no threadsafe callback is left')
    t.equal(openFds(), fdsBefore, 'the epoll and eventfd descriptors were closed')
  })
}
