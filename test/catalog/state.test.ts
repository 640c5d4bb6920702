import t, { type Test } from 'tap'
import { cp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadBootState, matchMachine } from '../../src/catalog/state.js'
import { createBootStore, BootLoadError } from '../../src/catalog/boot-store.js'
import { pino } from 'pino'
import { Writable } from 'node:stream'

const EXAMPLE = fileURLToPath(new URL('../../examples/matchbox', import.meta.url))

/** A pino logger that keeps lines for assertions. */
function captureLogger() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l))
      cb()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

async function copyExample(t: Test): Promise<string> {
  const dir = t.testdir({})
  await cp(EXAMPLE, join(dir, 'matchbox'), { recursive: true })
  return join(dir, 'matchbox')
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('conflicting ids between config.yaml and the Matchbox dir name both', async (t) => {
  const r = await loadBootState({
    profiles: { 'fcos-install': { boot: { kernel: '/k' } } },
    groups: [{ id: 'fcos-node1', profile: 'fcos-install', selector: { mac: '52:54:00:00:00:77' } }],
    matchboxDir: EXAMPLE,
  })
  t.notOk(r.ok)
  if (r.ok) return
  t.ok(r.errors.some((e) => /^profile "fcos-install" is defined twice: config\.yaml profiles\.fcos-install and .*profiles\/fcos-install\.json$/.test(e)), r.errors.join('\n'))
  t.ok(r.errors.some((e) => /^group "fcos-node1" is defined twice: config\.yaml groups\[0\] and .*groups\/fcos-node1\.json$/.test(e)), r.errors.join('\n'))
})

t.test('two Matchbox files with one id, unknown keys, missing profile, missing ignition: all reported with file', async (t) => {
  const dir = await copyExample(t)
  await writeFile(join(dir, 'groups', 'copy.json'), JSON.stringify({ id: 'fcos-node1', profile: 'fcos-install', selector: { mac: '52:54:00:00:00:01' } }))
  await writeFile(join(dir, 'groups', 'typo.json'), JSON.stringify({ id: 'typo', profile: 'fcos-install', selectors: { mac: '52:54:00:00:00:02' } }))
  await writeFile(join(dir, 'groups', 'orphan.json'), JSON.stringify({ id: 'orphan', profile: 'nope', selector: { mac: '52:54:00:00:00:03' } }))
  await writeFile(join(dir, 'groups', 'broken.json'), '{"id": "broken",')
  await writeFile(join(dir, 'groups', '.#editor.json'), 'not json, ignored')
  await writeFile(join(dir, 'profiles', 'noign.json'), JSON.stringify({ id: 'noign', ignition_id: 'missing.ign' }))
  const r = await loadBootState({ profiles: {}, groups: [], matchboxDir: dir })
  t.notOk(r.ok)
  if (r.ok) return
  const all = r.errors.join('\n')
  t.match(all, /group "fcos-node1" is defined twice: .*groups\/copy\.json and .*groups\/fcos-node1\.json/)
  t.match(all, /groups\/typo\.json: \/: unknown key "selectors"/)
  t.match(all, /groups\/orphan\.json: group "orphan" names profile "nope", which does not exist/)
  t.match(all, /groups\/broken\.json: .*JSON/)
  t.match(all, /profiles\/noign\.json: ignition file .*ignition\/missing\.ign: file not found/)
  t.notMatch(all, /editor/)
})

t.test('createBootStore refuses a bad first load', async (t) => {
  await t.rejects(createBootStore({ profiles: {}, groups: [{ id: 'g', profile: 'missing' }] }), BootLoadError)
})

t.test('reload: a bad file keeps the last good state serving; fixing it reloads (fs.watch)', async (t) => {
  const dir = await copyExample(t)
  const { logger, lines } = captureLogger()
  const store = await createBootStore({ profiles: {}, groups: [], matchboxDir: dir, logger, debounceMs: 50 })
  t.teardown(() => store.close())
  const good = store.get()
  t.equal(matchMachine(good, { mac: '52-54-00-a1-9c-ae' })?.profile.id, 'fcos-install')

  // A bad edit: the profile loses its kernel field name (typo) -> reload fails, old state stays.
  await writeFile(join(dir, 'profiles', 'fcos-install.json'), JSON.stringify({ id: 'fcos-install', boot: { kernl: '/x' } }))
  await until(() => lines.some((l) => l['msg'] === 'boot reload failed; previous state keeps serving'))
  t.equal(store.get(), good, 'same state object still served')
  const failure = lines.find((l) => l['msg'] === 'boot reload failed; previous state keeps serving')!
  t.match(failure['reason'], /profiles\/fcos-install\.json: \/boot: unknown key "kernl"/)

  // The fix, plus a new group: picked up by the watcher.
  await writeFile(join(dir, 'profiles', 'fcos-install.json'), JSON.stringify({ id: 'fcos-install', boot: { kernel: '/assets/k2' } }))
  await writeFile(join(dir, 'groups', 'new.json'), JSON.stringify({ id: 'new', profile: 'flatcar-install', selector: { mac: '52:54:00:00:00:42' } }))
  await until(() => store.get() !== good && store.get().groups.length === 5)
  t.equal(matchMachine(store.get(), { mac: '52:54:00:00:00:42' })?.group.id, 'new')
  t.equal(matchMachine(store.get(), { mac: '52:54:00:a1:9c:ae' })?.profile.boot?.kernel, '/assets/k2')
})

t.test('reload(sources) swaps config.yaml groups (SIGHUP path), errors keep the old state', async (t) => {
  const store = await createBootStore({ profiles: { p: { boot: { kernel: '/k' } } }, groups: [{ id: 'a', profile: 'p', selector: { mac: '52:54:00:00:00:01' } }] })
  t.teardown(() => store.close())
  const bad = await store.reload({ profiles: { p: { boot: { kernel: '/k' } } }, groups: [{ id: 'a', profile: 'p' }, { id: 'b', profile: 'p' }] })
  t.notOk(bad.ok)
  t.equal(matchMachine(store.get(), { mac: '52:54:00:00:00:01' })?.group.id, 'a')
  const ok = await store.reload({ profiles: { p: { boot: { kernel: '/k' } } }, groups: [{ id: 'b', profile: 'p', selector: { mac: '52:54:00:00:00:01' } }] })
  t.ok(ok.ok)
  t.equal(matchMachine(store.get(), { mac: '52:54:00:00:00:01' })?.group.id, 'b')
  // Concurrent reloads are serialized and all settle.
  const results = await Promise.all([store.reload(), store.reload(), store.reload()])
  t.ok(results.every((r) => r.ok))
})

t.test('DHCP-side matcher: option 97 byte order matches an iPXE-form selector', async (t) => {
  const r = await loadBootState({ profiles: { p: {} }, groups: [{ id: 'g', profile: 'p', selector: { uuid: '4C4C4544-0042-3510-8052-B4C04F4B4E32', arch: 'x86_64' } }] })
  if (!r.ok) throw new Error(r.errors.join())
  t.equal(matchMachine(r.state, { uuid: '44454c4c-4200-1035-8052-b4c04f4b4e32', arch: 'x86_64', mac: undefined })?.group.id, 'g')
  t.equal(matchMachine(r.state, { uuid: '4c4c454400423510 8052b4c04f4b4e32'.replace(' ', ''), arch: 'x86_64' })?.group.id, 'g')
  t.equal(matchMachine(r.state, { uuid: '4c4c4544-0042-3510-8052-b4c04f4b4e32', arch: 'i386' }), undefined)
})

t.test('loader shim-grub: the GRUB trial render at load; a kernel GRUB cannot fetch is an error naming the group', async (t) => {
  const { grubGroupCheck } = await import('../../src/boot/grub-check.js')
  const checkGroup = grubGroupCheck('http://10.213.0.1:8080')
  const profiles = {
    remote: { boot: { kernel: 'http://mirror.example/vmlinuz', initrd: ['/assets/initrd'], args: ['ip=${ip}'] } },
    local: { boot: { kernel: 'http://10.213.0.1:8080/assets/vmlinuz', initrd: ['/assets/initrd'], args: ['mac=${mac:hexhyp}'] }, loader: 'shim-grub' as const },
    odd: { boot: { kernel: '/assets/vmlinuz', args: ['x=${net1/mac}'] } },
  }
  const bad = await loadBootState({
    profiles,
    groups: [
      { id: 'sb', profile: 'remote', loader: 'shim-grub', selector: { mac: '52:54:00:00:00:01' } },
      { id: 'ipxe-ok', profile: 'remote', selector: { mac: '52:54:00:00:00:02' } },
      { id: 'by-profile', profile: 'local', selector: { mac: '52:54:00:00:00:03' } },
      { id: 'var', profile: 'odd', loader: 'shim-grub', selector: { mac: '52:54:00:00:00:04' } },
    ],
    checkGroup,
  })
  t.equal(bad.ok, false)
  if (bad.ok) return
  t.equal(bad.errors.length, 2, bad.errors.join('\n'))
  t.match(bad.errors[0], /groups\[0\]: group "sb": loader shim-grub: profile "remote": "http:\/\/mirror.example\/vmlinuz" is not under http:\/\/10.213.0.1:8080\/assets\//)
  t.match(bad.errors[1], /group "var": .*\$\{net1\/mac\} cannot be filled in for GRUB/)
  const good = await loadBootState({ profiles, groups: [{ id: 'ipxe-ok', profile: 'remote' }, { id: 'by-profile', profile: 'local', selector: { mac: '52:54:00:00:00:03' } }], checkGroup })
  t.equal(good.ok, true, 'the iPXE group with the same remote kernel loads; a profile-level loader on pxebox assets loads')
  if (good.ok) t.equal(good.state.profiles.get('local')?.loader, 'shim-grub')
})
