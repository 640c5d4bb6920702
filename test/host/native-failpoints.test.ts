// The native addon's failure paths that only a failing N-API call reaches (issue 14 item 6), driven through the
// fault-injection build (native/failpoint.h) that scripts/test-native-asan.sh compiles and runs this file against:
// udpOpen failing part-way gives back its references, async context and descriptor; a sendfile job that cannot be
// created or queued rejects its promise (never leaves it pending) and deletes its work item. What each failure leaves
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

t.test('a sendfile job that cannot be created rejects its promise', { skip }, async (t) => {
  const addon = native as NativeAddon
  const work = trackResources(t, 'pxebox:sendfile')
  const promise = armed('sendfile:create', () => addon.sendfile(1, 0, 0, 10))
  await t.rejects(promise, { message: /could not create the sendfile job/ })
  t.equal(work.created(), 0, 'no work item was made')
})

t.test('a sendfile job that cannot be queued rejects its promise and deletes its work item', { skip }, async (t) => {
  const addon = native as NativeAddon
  const work = trackResources(t, 'pxebox:sendfile')
  const promise = armed('sendfile:queue', () => addon.sendfile(1, 0, 0, 10))
  // Bounded: the defect was a promise that never settled, and a test must fail on it rather than hang.
  let timer: NodeJS.Timeout | undefined
  const pending = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), 5000)))
  const result = await Promise.race([promise.then(() => 'resolved', (err: Error) => err.message), pending]).finally(() => clearTimeout(timer))
  t.match(result, /could not queue the sendfile job/, 'rejected (within 5 s)')
  await settle(() => work.live() === 0)
  t.equal(work.created(), 1, 'the work item was made')
  t.equal(work.live(), 0, 'and deleted')
})
