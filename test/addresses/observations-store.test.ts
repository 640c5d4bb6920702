/**
 * The tracker's table in the Store: observed.json of the previous release imported once and kept as
 * observed.json.migrated, read back from the store after a restart; an unusable saved table kept aside.
 */
import t, { type Test } from 'tap'
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAddressTracking } from '../../src/addresses/tracking-service.js'
import { OBSERVATIONS_KIND } from '../../src/addresses/observations-store.js'
import { storeIn } from '../helpers/store.js'

const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pxebox-observed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('observed.json of the previous release is imported once: the bindings are back, and again after a restart', async (t) => {
  const dir = tempDir(t)
  copyFileSync(new URL('../fixtures/data-dir-v1/observed.json', import.meta.url), join(dir, 'observed.json'))
  const start = async () => startAddressTracking({ interfaceName: 'lo', store: await storeIn(t, dir), dataDir: dir, strayAfterMs: 60_000, allowedServers: [], arp: false, listenClientPort: false })
  const first = await start()
  t.match(first.leases(), [{ mac: '52:54:00:00:0a:01', ip: '10.213.10.1', server: '10.213.10.254', state: 'acked' }])
  await first.close()
  t.same(readdirSync(dir).filter((f) => f.startsWith('observed.json')), ['observed.json.migrated'], 'the old file kept, renamed')
  const second = await start()
  t.teardown(() => second.close())
  t.match(second.leases(), [{ mac: '52:54:00:00:0a:01', ip: '10.213.10.1' }], 'read back from the store')
})

t.test('a saved table the tracker cannot use is kept aside in the store; tracking starts empty', async (t) => {
  const dir = tempDir(t)
  const store = await storeIn(t, dir)
  writeFileSync(join(dir, 'observed.json'), '{"version":7}')
  const tracking = await startAddressTracking({ interfaceName: 'lo', store, dataDir: dir, strayAfterMs: 60_000, allowedServers: [], arp: false, listenClientPort: false })
  t.same(tracking.leases(), [])
  await tracking.close()
  const kept = (await store.list(OBSERVATIONS_KIND)).map((e) => [e.id.replace(/corrupt-.*/, 'corrupt-<time>'), e.value])
  t.same(kept, [['table.corrupt-<time>', { version: 7 }]], 'the unusable table kept aside under its own id')
})
