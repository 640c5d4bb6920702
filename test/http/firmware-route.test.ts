import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/http/app.js'
import { loadBootState } from '../../src/catalog/state.js'
import { memoryEvents } from '../../src/machines/events.js'

t.test('/firmware/ serves the TFTP root for UEFI HTTP boot clients, with HEAD and the firmware step', async (t) => {
  const fw = mkdtempSync(join(tmpdir(), 'pxebox-fw-'))
  const body = Buffer.alloc(70_000, 7)
  writeFileSync(join(fw, 'snponly.efi'), body)
  const loaded = await loadBootState({ profiles: {}, groups: [] })
  if (!loaded.ok) throw new Error(loaded.errors.join())
  const events = memoryEvents()
  const app = buildApp({ store: { get: () => loaded.state }, assetsDir: fw, firmwareDir: fw, publicUrl: 'http://10.0.0.2:8080', version: 't', events })
  t.teardown(() => app.close())
  // OVMF's HttpBootDxe sends HEAD first for the size, then GET (vm-boot.md).
  const head = await app.inject({ method: 'HEAD', url: '/firmware/snponly.efi', headers: { 'user-agent': 'UefiHttpBoot/1.0' } })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['content-length'], String(body.length))
  const get = await app.inject({ method: 'GET', url: '/firmware/snponly.efi' })
  t.equal(get.statusCode, 200)
  t.same(get.rawPayload, body)
  t.equal((await app.inject({ url: '/firmware/../etc/passwd' })).statusCode >= 400, true)
  t.equal((await app.inject({ url: '/firmware/nope.efi' })).statusCode, 404)
  t.match(events.events.find((e) => e.detail.path === '/firmware/snponly.efi' && e.detail.method === 'GET'), { kind: 'http', step: 'firmware', outcome: 'ok' })
  const noFw = buildApp({ store: { get: () => loaded.state }, assetsDir: fw, publicUrl: 'http://x', version: 't' })
  t.teardown(() => noFw.close())
  t.equal((await noFw.inject({ url: '/firmware/snponly.efi' })).statusCode, 404, 'not served without a firmware dir')
})
