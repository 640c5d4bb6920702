/**
 * The boot store's watchers (issue 14): they follow the current sources (a reload that moves ignition_dir moves the
 * watch) and react only to files a load reads, never to state, log or editor files written beside them. Reloads are
 * counted from the store's "boot state reloaded" log line, and from "boot groups changed" (a changed Matchbox group
 * file is read alone, issue 16). Each zero-reload check is followed by an edit the store
 * must pick up, so a dead watcher cannot pass for a quiet one.
 */
import t from 'tap'
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { type BootSources } from '../../src/catalog/state.js'
import { createBootStore } from '../../src/catalog/boot-store.js'

const EXAMPLE = fileURLToPath(new URL('../../examples/matchbox', import.meta.url))
const DEBOUNCE_MS = 50
/** Far above the debounce: what a change would have set off has run by then. */
const SETTLE_MS = 1500

function counter() {
  let reloads = 0
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l && /^boot (state reloaded|groups changed)$/.test((JSON.parse(l) as { msg?: string }).msg ?? '')) reloads++
      cb()
    },
  })
  return { logger: pino({ level: 'info' }, stream), reloads: () => reloads }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS))
const ignition = (v: string) => JSON.stringify({ ignition: { version: '3.3.0' }, storage: { files: [{ path: `/etc/${v}`, mode: 420 }] } })

t.test('after a reload to a new ignition_dir, edits there reload and edits in the old one do not', async (t) => {
  const dir = t.testdir({ old: { 'node.ign': ignition('a') }, new: { 'node.ign': ignition('b') } })
  const { logger, reloads } = counter()
  const sources = (ignitionDir: string): BootSources => ({
    profiles: { p: { boot: { kernel: '/assets/k' }, ignition: 'node.ign' } },
    groups: [{ id: 'g', profile: 'p' }],
    ignitionDir,
  })
  const store = await createBootStore({ ...sources(join(dir, 'old')), logger, debounceMs: DEBOUNCE_MS })
  t.teardown(() => store.close())
  t.ok((await store.reload(sources(join(dir, 'new')))).ok)
  t.equal(reloads(), 1)

  await writeFile(join(dir, 'old', 'node.ign'), ignition('a2'))
  await settle()
  t.equal(reloads(), 1, 'the old folder is no longer watched')
  await writeFile(join(dir, 'new', 'node.ign'), ignition('b2'))
  await until(() => reloads() === 2)
  t.match(store.get().templates.get('ignition:p'), /b2/, 'the edit in the new folder is served')
})

t.test('100 unrelated files in watched folders cause zero reloads; a file the catalog reads still does', async (t) => {
  const root = t.testdir({})
  const matchbox = join(root, 'matchbox')
  await cp(EXAMPLE, matchbox, { recursive: true })
  const { logger, reloads } = counter()
  const store = await createBootStore({ profiles: {}, groups: [], matchboxDir: matchbox, logger, debounceMs: DEBOUNCE_MS })
  t.teardown(() => store.close())
  const ign = join(matchbox, 'ignition')
  await mkdir(join(ign, 'machines'))
  // data_dir or a log put inside the Matchbox folders: state flushes, logs, temp files, editor swap files.
  const writes: [string, string][] = []
  for (let i = 0; i < 20; i++) {
    writes.push([join(ign, 'machines', `52-54-00-00-00-${String(i).padStart(2, '0')}.json`), '{}'])
    writes.push([join(ign, `observed.json.tmp-${i}`), '{}'])
    writes.push([join(ign, 'pxebox.log'), `line ${i}\n`])
    writes.push([join(matchbox, 'groups', `.g${i}.json.swp`), 'x'])
    writes.push([join(matchbox, `notes-${i}.txt`), 'x'])
  }
  writes.push([join(ign, 'observed.json'), '{}'])
  for (const [path, text] of writes.slice(0, 100)) await writeFile(path, text)
  await settle()
  t.equal(reloads(), 0, 'no reload from 100 files no load reads')

  // A file a profile names is still watched: the store was quiet, not deaf.
  await writeFile(join(matchbox, 'groups', 'new.json'), JSON.stringify({ id: 'new', profile: 'flatcar-install', selector: { mac: '52:54:00:00:00:42' } }))
  await until(() => reloads() === 1)
  t.equal(store.get().groups.some((g) => g.id === 'new'), true)
})
